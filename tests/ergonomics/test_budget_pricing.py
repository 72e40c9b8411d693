"""Cost budgets work after a plain install, and never pass silently when a price is missing."""

from __future__ import annotations

import logging
import sys
import tomllib
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import agentstore
from agentstore import Budget, BudgetExceededError, GenaiPricer
from agentstore.pricing import warn_if_cost_budget_unpriced
from agentstore_cli.app import app


async def test_a_cost_budget_trips_on_automatically_priced_calls() -> None:
    # No cost_usd given: the default install prices gpt-4o with genai-prices.
    async with agentstore.open(in_memory=True) as store:
        session = await store.create_session(budget=Budget(max_cost_usd=0.01))
        priced = await store.append(
            session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=10_000, tokens_out=1000)
        )
        assert priced.metadata.cost_usd is not None and priced.metadata.cost_usd > 0.01
        with pytest.raises(BudgetExceededError):
            await store.append(session.id, agentstore.llm_request("gpt-4o", prompt="again"))
        state = await store.get_state(session.id)
    assert state.over_budget()
    assert state.budget_remaining is not None and state.budget_remaining.cost_usd == 0.0


def test_an_unknown_model_is_flagged_logged_once_and_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with (
        caplog.at_level(logging.WARNING, "agentstore.pricing"),
        agentstore.open_sync(data) as store,
    ):
        session = store.create_session(budget=Budget(max_cost_usd=0.5))
        first = store.append(
            session.id, agentstore.llm_response("my-local-llama", "x", tokens_in=900)
        )
        store.append(session.id, agentstore.llm_response("my-local-llama", "x", tokens_in=900))
    assert first.metadata.extra == {"price": "unknown-model"}
    said = [r.getMessage() for r in caplog.records if "my-local-llama" in r.getMessage()]
    assert len(said) == 1
    assert "count $0 toward cost budgets" in said[0]

    runner = CliRunner()
    text = runner.invoke(
        app, ["--data-dir", str(data), "stats", session.id], env={"COLUMNS": "100"}
    )
    assert "+ 2 calls without a price (counted as $0)" in text.stdout
    assert "(at most: some calls have no price)" in text.stdout
    doc = orjson.loads(
        runner.invoke(app, ["--data-dir", str(data), "stats", session.id, "-o", "json"]).stdout
    )
    assert doc["tokens"]["unpriced_calls"] == 2


def test_a_cost_budget_where_nothing_is_priced_is_reported(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, "agentstore.pricing")
    budget = Budget(max_cost_usd=1.0)
    assert not warn_if_cost_budget_unpriced(budget, GenaiPricer())  # prices: nothing to say
    assert not warn_if_cost_budget_unpriced(Budget(max_tokens=10), None)  # no cost limit
    assert not warn_if_cost_budget_unpriced(None, None)
    assert caplog.records == []
    assert warn_if_cost_budget_unpriced(budget, None)
    assert "pricing=False: only calls recorded with cost_usd count" in caplog.text
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # as if not installed
    assert warn_if_cost_budget_unpriced(budget, GenaiPricer())
    assert "genai-prices cannot be imported" in caplog.text


def test_genai_prices_is_a_core_dependency() -> None:
    # A plain `pip install agentstore` must price calls, or cost budgets never trip.
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    core = [req.split(">")[0].split("=")[0].strip() for req in pyproject["project"]["dependencies"]]
    assert "genai-prices" in core

"""`agentstore reprice` and `reprice_session`: recompute costs, never write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pytest
from genai_prices import Usage, calc_price
from typer.testing import CliRunner

import agentstore
from agentstore.pricing import reprice_session
from agentstore_cli.app import app


def gpt4o(tokens_in: int, tokens_out: int) -> float:
    usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out)
    return float(calc_price(usage, model_ref="gpt-4o").total_price)


async def seed(data: Path) -> str:
    """A session recorded without pricing: one made-up cost, one no cost, one unknown model."""
    async with agentstore.open(data, pricing=False) as store:
        session = await store.create_session(name="reprice-me")
        await store.append_many(
            session.id,
            [
                agentstore.user_message("hi"),
                agentstore.llm_request("gpt-4o", [{"role": "user", "content": "hi"}]),
                agentstore.llm_response(
                    "gpt-4o", "a", tokens_in=1000, tokens_out=100, cost_usd=1.0
                ),
                agentstore.llm_response("gpt-4o", "b", tokens_in=2000, tokens_out=300),
                agentstore.llm_response("house-model", "c", tokens_in=50, tokens_out=5),
            ],
        )
    return session.id


def log_bytes(data: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(data)): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()
    }


async def test_reprice_session_reports_old_and_new_cost_per_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sid = await seed(data)
    before = log_bytes(data)
    async with agentstore.open(data, read_only=True) as store:
        report = await reprice_session(store, sid)
    assert log_bytes(data) == before
    by_model = {m.model: m for m in report.models}
    assert set(by_model) == {"gpt-4o", "house-model"}
    gpt = by_model["gpt-4o"]
    assert (gpt.events, gpt.tokens_in, gpt.tokens_out, gpt.unpriced) == (2, 3000, 400, 0)
    assert gpt.old_cost_usd == 1.0
    assert gpt.new_cost_usd == pytest.approx(gpt4o(1000, 100) + gpt4o(2000, 300))
    house = by_model["house-model"]
    assert (house.events, house.old_cost_usd, house.new_cost_usd, house.unpriced) == (
        1,
        0.0,
        0.0,
        1,
    )
    assert report.old_cost_usd == 1.0
    assert report.new_cost_usd == pytest.approx(gpt.new_cost_usd)
    assert report.source.startswith("genai-prices/")


def test_reprice_cli_table_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    sid = anyio.run(seed, data)
    before = log_bytes(data)
    monkeypatch.setenv("COLUMNS", "120")
    runner = CliRunner()
    text = runner.invoke(app, ["--data-dir", str(data), "reprice", sid[:8]])
    assert text.exit_code == 0, text.output
    assert "gpt-4o" in text.output
    assert "house-model" in text.output
    assert "1 unpriced" in text.output
    assert "total" in text.output
    assert "$1.00" in text.output  # the recorded (made-up) cost
    assert "was not changed" in text.output
    as_json = runner.invoke(app, ["reprice", sid, "--format", "json", "--data-dir", str(data)])
    assert as_json.exit_code == 0, as_json.output
    report = orjson.loads(as_json.stdout)
    assert report["session_id"] == sid
    assert report["old_cost_usd"] == 1.0
    assert report["new_cost_usd"] == pytest.approx(gpt4o(1000, 100) + gpt4o(2000, 300))
    assert [m["model"] for m in report["models"]] == ["gpt-4o", "house-model"]
    assert log_bytes(data) == before  # never rewrites the log


def test_reprice_cli_errors_are_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "agentstore_cli", "--data-dir", str(data), "reprice", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_reprice_without_genai_prices_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    sid = anyio.run(seed, data)
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # as if not installed
    result = CliRunner().invoke(app, ["--data-dir", str(data), "reprice", sid])
    assert result.exit_code == 1
    assert "pip install genai-prices" in result.stderr

"""Automatic pricing at append time with genai-prices, and its switches."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

import agentstore
from agentstore import GenaiPricer, InvalidInputError, Metadata, Price, Store


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True) as opened:
        yield opened


def expected_cost(model: str, provider: str | None = None, **usage: int) -> float:
    """The price genai-prices itself gives, so the tests follow its data updates."""
    return float(calc_price(Usage(**usage), model_ref=model, provider_id=provider).total_price)


async def test_known_model_is_priced_at_append(store: Store) -> None:
    session = await store.create_session()
    event = agentstore.llm_response("gpt-4o", "hi", tokens_in=1000, tokens_out=100)
    stored = await store.append(session.id, event)
    cost = expected_cost("gpt-4o", input_tokens=1000, output_tokens=100)
    assert cost > 0
    assert stored.metadata.cost_usd == pytest.approx(cost)
    extra = stored.metadata.extra or {}
    assert extra["price"].startswith("genai-prices/")
    assert (extra["price_model"], extra["price_provider"]) == ("gpt-4o", "openai")
    # The caller's event is not changed; the stored copy and the state carry the cost.
    assert event.metadata.cost_usd is None
    assert (await store.get_events(session.id))[0].metadata.cost_usd == pytest.approx(cost)
    assert (await store.get_state(session.id)).tokens.cost_usd == pytest.approx(cost)


async def test_cached_and_reasoning_tokens_are_priced_at_their_rates(store: Store) -> None:
    session = await store.create_session()
    plain = await store.append(
        session.id,
        agentstore.llm_response(
            "claude-sonnet-4-5", "x", tokens_in=10_000, tokens_out=500, provider="anthropic"
        ),
    )
    cached = await store.append(
        session.id,
        agentstore.llm_response(
            "claude-sonnet-4-5",
            "x",
            tokens_in=10_000,
            tokens_out=500,
            cache_read_tokens=8_000,
            cache_write_tokens=1_000,
            provider="anthropic",
        ),
    )
    assert cached.metadata.cost_usd == pytest.approx(
        expected_cost(
            "claude-sonnet-4-5",
            "anthropic",
            input_tokens=10_000,
            output_tokens=500,
            cache_read_tokens=8_000,
            cache_write_tokens=1_000,
        )
    )
    assert plain.metadata.cost_usd is not None
    assert cached.metadata.cost_usd is not None
    assert cached.metadata.cost_usd < plain.metadata.cost_usd  # cache reads are cheaper
    assert (cached.metadata.extra or {})["price_provider"] == "anthropic"
    reasoning = await store.append(
        session.id,
        agentstore.llm_response("o3", "x", tokens_in=100, tokens_out=1_000, reasoning_tokens=800),
    )
    assert reasoning.metadata.cost_usd == pytest.approx(
        expected_cost("o3", input_tokens=100, output_tokens=1_000, output_reasoning_tokens=800)
    )


async def test_llm_request_with_tokens_is_priced(store: Store) -> None:
    session = await store.create_session()
    stored = await store.append(session.id, agentstore.llm_request("gpt-4o", tokens_in=2_000))
    assert stored.metadata.cost_usd == pytest.approx(expected_cost("gpt-4o", input_tokens=2_000))


async def test_unknown_model_costs_zero_and_is_flagged(store: Store) -> None:
    session = await store.create_session()
    stored = await store.append(
        session.id, agentstore.llm_response("my-finetune-v7", "x", tokens_in=10, tokens_out=5)
    )
    assert stored.metadata.cost_usd == 0.0
    assert stored.metadata.extra == {"price": "unknown-model"}
    unknown_provider = await store.append(
        session.id,
        agentstore.llm_response("gpt-4o", "x", tokens_in=10, provider="no-such-provider"),
    )
    assert (unknown_provider.metadata.extra or {})["price"] == "unknown-model"


async def test_user_given_cost_wins(store: Store) -> None:
    session = await store.create_session()
    stored = await store.append(
        session.id,
        agentstore.llm_response("gpt-4o", "x", tokens_in=1000, tokens_out=100, cost_usd=1.25),
    )
    assert stored.metadata.cost_usd == 1.25
    assert stored.metadata.extra is None
    free = await store.append(
        session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=1000, cost_usd=0.0)
    )
    assert free.metadata.cost_usd == 0.0


async def test_events_without_model_or_tokens_are_not_priced(store: Store) -> None:
    session = await store.create_session()
    no_tokens = await store.append(session.id, agentstore.llm_response("gpt-4o", "x"))
    no_model = await store.append(
        session.id,
        agentstore.new_event("llm_response", {"content": "x"}, Metadata(tokens_in=5)),
    )
    other_type = await store.append(
        session.id, agentstore.new_event("custom", None, Metadata(model="gpt-4o", tokens_in=5))
    )
    for event in (no_tokens, no_model, other_type):
        assert event.metadata.cost_usd is None
        assert event.metadata.extra is None


async def test_inconsistent_token_counts_are_flagged_not_raised(store: Store) -> None:
    session = await store.create_session()
    stored = await store.append(
        session.id,
        agentstore.llm_response("gpt-4o", "x", tokens_in=10, cache_read_tokens=500),
    )
    assert stored.metadata.cost_usd is None
    assert (stored.metadata.extra or {})["price"] == "invalid-usage"


async def test_pricing_off() -> None:
    async with agentstore.open(in_memory=True, pricing=False) as store:
        session = await store.create_session()
        stored = await store.append(
            session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=1000, tokens_out=100)
        )
        assert stored.metadata.cost_usd is None
        assert stored.metadata.extra is None
        assert (await store.get_state(session.id)).tokens.cost_usd == 0.0


async def test_a_custom_pricer_and_a_failing_one() -> None:
    seen: list[tuple[str | None, datetime | None]] = []

    def flat_rate(meta: Metadata, at: datetime | None) -> Price:
        seen.append((meta.model, at))
        return Price(((meta.tokens_in or 0) + (meta.tokens_out or 0)) * 1e-6, "flat-rate")

    async with agentstore.open(in_memory=True, pricing=flat_rate) as store:
        session = await store.create_session()
        stored = await store.append(
            session.id, agentstore.llm_response("local-llama", "x", tokens_in=500, tokens_out=500)
        )
    assert stored.metadata.cost_usd == pytest.approx(0.001)
    assert stored.metadata.extra == {"price": "flat-rate"}
    assert seen == [("local-llama", None)]

    def broken(meta: Metadata, at: datetime | None) -> Price:
        raise RuntimeError("price service down")

    async with agentstore.open(in_memory=True, pricing=broken) as store:
        session = await store.create_session()
        stored = await store.append(session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=5))
    assert stored.metadata.cost_usd is None
    assert stored.metadata.extra == {"price": "error"}

    def wrong_type(meta: Metadata, at: datetime | None) -> Any:
        return 0.5

    async with agentstore.open(in_memory=True, pricing=wrong_type) as store:
        session = await store.create_session()
        stored = await store.append(session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=5))
    assert stored.metadata.extra == {"price": "error"}


@pytest.mark.parametrize(
    "price", [Price(-0.5, "mine"), Price(True, "mine"), Price(0.5, 7), Price(0.5, "mine", model=3)]
)
async def test_a_price_that_could_not_be_read_back_leaves_the_event_unpriced(
    tmp_path: Path, price: Price
) -> None:
    # Written as given, such a cost or source made the line unreadable: every replay of
    # the session failed. The event is kept, flagged as a pricing error.
    async with agentstore.open(tmp_path, pricing=lambda meta, at: price) as store:
        sid = (await store.create_session()).id
        stored = await store.append(sid, agentstore.llm_response("gpt-4o", "x", tokens_in=5))
    assert (stored.metadata.cost_usd, stored.metadata.extra) == (None, {"price": "error"})
    async with agentstore.open(tmp_path, pricing=False) as store:
        (read,) = await store.replay(sid)
    assert read.metadata.extra == {"price": "error"}


def test_bad_pricing_argument() -> None:
    with pytest.raises(InvalidInputError, match="pricing must be"):
        agentstore.open(in_memory=True, pricing="yes")  # type: ignore[arg-type]


async def test_without_genai_prices_calls_are_flagged_and_a_warning_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # None in sys.modules makes `import genai_prices` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "genai_prices", None)
    assert not GenaiPricer.available()
    async with agentstore.open(in_memory=True) as store:
        session = await store.create_session()
        with caplog.at_level(logging.WARNING, "agentstore"):
            first = await store.append(
                session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=5)
            )
            await store.append(session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=5))
    assert first.metadata.cost_usd is None
    assert first.metadata.extra == {"price": "unavailable"}
    warnings = [r for r in caplog.records if "pip install genai-prices" in r.getMessage()]
    assert len(warnings) == 1


def test_importing_agentstore_does_not_import_genai_prices() -> None:
    code = "import sys, agentstore; print('genai_prices' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_sync_store_prices_too() -> None:
    with agentstore.open_sync(in_memory=True) as store:
        session = store.create_session()
        stored = store.append(
            session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=1000, tokens_out=100)
        )
    cost: Any = stored.metadata.cost_usd
    assert cost == pytest.approx(expected_cost("gpt-4o", input_tokens=1000, output_tokens=100))

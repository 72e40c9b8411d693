"""Tool-call and LLM-call tracking: context managers and the decorator, async and sync."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import agentstore
from agentstore import ErrorPayload, EventType, InvalidInputError, Store, SyncStore
from agentstore.testing import check_events


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True, pricing=False) as opened:
        yield opened


async def test_track_tool_records_call_and_result(store: Store) -> None:
    session = await store.create_session()
    async with store.track_tool(session.id, "search_flights", {"to": "MUC"}) as call:
        assert call.call_event is not None  # tool_called is recorded on entry
        assert (await store.get_state(session.id)).open_calls.keys() == {call.call_id}
        call.result = [{"flight": "EW456"}]
    called, result = check_events(
        await store.get_events(session.id), [EventType.TOOL_CALLED, EventType.TOOL_RESULT]
    )
    assert called.payload == {"tool": "search_flights", "args": {"to": "MUC"}}
    assert result.payload == {"tool": "search_flights", "result": [{"flight": "EW456"}]}
    assert called.metadata.call_id == result.metadata.call_id == call.call_id
    assert result.metadata.duration_ms is not None
    assert result.metadata.duration_ms == call.duration_ms
    assert call.result_event is not None
    assert call.result_event.sequence_number == 2
    assert (await store.get_state(session.id)).open_calls == {}


async def test_track_tool_measures_duration(store: Store) -> None:
    session = await store.create_session()
    async with store.track_tool(session.id, "slow") as call:
        await anyio.sleep(0.05)
    assert call.duration_ms is not None
    assert call.duration_ms >= 50


async def test_track_tool_records_an_error_and_reraises(store: Store) -> None:
    session = await store.create_session()
    with pytest.raises(TimeoutError, match="no answer"):
        async with store.track_tool(session.id, "search_flights", {"to": "MUC"}) as call:
            raise TimeoutError("no answer in 30s")
    called, failed = check_events(
        await store.get_events(session.id), [EventType.TOOL_CALLED, EventType.ERROR]
    )
    payload = ErrorPayload.model_validate(failed.payload)
    assert payload.error == "no answer in 30s"
    assert payload.kind == "TimeoutError"
    assert payload.traceback is not None
    assert "raise TimeoutError" in payload.traceback
    assert failed.metadata.call_id == called.metadata.call_id == call.call_id
    assert failed.metadata.tool_name == "search_flights"
    state = await store.get_state(session.id)
    assert (state.errors, state.open_calls) == (1, {})


async def test_track_tool_records_cancellation(store: Store) -> None:
    session = await store.create_session()
    with anyio.move_on_after(0.01):
        async with store.track_tool(session.id, "hangs"):
            await anyio.sleep_forever()
    _, failed = check_events(
        await store.get_events(session.id), [EventType.TOOL_CALLED, EventType.ERROR]
    )
    assert failed.payload["kind"] == "CancelledError"


async def test_a_failure_to_record_the_error_keeps_the_original_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = await agentstore.open(in_memory=True)
    session = await store.create_session()

    async def tool_closing_the_store() -> None:
        async with store.track_tool(session.id, "t"):
            await store.close()
            raise RuntimeError("boom")

    with caplog.at_level(logging.WARNING, "agentstore"), pytest.raises(RuntimeError, match="boom"):
        await tool_closing_the_store()
    assert "could not record the error" in caplog.text


async def test_track_tool_converts_results_to_json(store: Store) -> None:
    @dataclasses.dataclass
    class Flight:
        number: str
        price: float

    session = await store.create_session()
    async with store.track_tool(session.id, "search") as call:
        call.result = {"best": Flight("EW456", 65.0), "tags": {"cheap"}, "obj": object()}
    result = (await store.get_events(session.id))[-1].payload["result"]
    assert result["best"] == {"number": "EW456", "price": 65.0}
    assert result["tags"] == ["cheap"]
    assert result["obj"].startswith("<object object")


async def test_track_tool_rejects_bad_arguments_before_recording(store: Store) -> None:
    session = await store.create_session()
    with pytest.raises(InvalidInputError):
        store.track_tool(session.id, "", {})
    assert await store.get_events(session.id) == []


async def test_track_llm_records_request_and_response(store: Store) -> None:
    session = await store.create_session()
    messages = [{"role": "user", "content": "Cheapest flight to MUC?"}]
    async with store.track_llm(session.id, "gpt-4o", messages, provider="openai") as llm:
        llm.respond("EW456", tokens_in=812, tokens_out=95, cost_usd=0.002, finish_reason="stop")
    request, response = check_events(
        await store.get_events(session.id), [EventType.LLM_REQUEST, EventType.LLM_RESPONSE]
    )
    assert request.payload == {"model": "gpt-4o", "messages": messages}
    assert response.payload == {"model": "gpt-4o", "content": "EW456", "finish_reason": "stop"}
    assert request.metadata.call_id == response.metadata.call_id == llm.call_id
    meta = response.metadata
    assert (meta.tokens_in, meta.tokens_out, meta.cost_usd) == (812, 95, 0.002)
    assert meta.provider == "openai"
    assert meta.duration_ms is not None
    state = await store.get_state(session.id)
    assert (state.tokens.input, state.tokens.output, state.tokens.cost_usd) == (812, 95, 0.002)
    assert state.open_calls == {}


async def test_track_llm_respond_checks_its_arguments(store: Store) -> None:
    session = await store.create_session()
    async with store.track_llm(session.id, "gpt-4o") as llm:
        with pytest.raises(agentstore.InvalidEventError, match="tokens_out"):
            llm.respond("x", tokens_out=-5)
        llm.respond("x", tokens_out=5, model="gpt-4o-2024-08-06")
    response = (await store.get_events(session.id))[-1]
    assert response.metadata.model == "gpt-4o-2024-08-06"


async def test_track_llm_without_respond_records_an_empty_response(store: Store) -> None:
    session = await store.create_session()
    async with store.track_llm(session.id, "gpt-4o", prompt="hi"):
        pass
    request, response = await store.get_events(session.id)
    assert request.payload == {"model": "gpt-4o", "prompt": "hi"}
    assert response.payload == {"model": "gpt-4o"}


async def test_track_llm_records_an_error(store: Store) -> None:
    session = await store.create_session()
    with pytest.raises(ConnectionError):
        async with store.track_llm(session.id, "gpt-4o"):
            raise ConnectionError("rate limited")
    _, failed = check_events(
        await store.get_events(session.id), [EventType.LLM_REQUEST, EventType.ERROR]
    )
    assert failed.metadata.model == "gpt-4o"
    assert (await store.get_state(session.id)).open_calls == {}


async def test_tool_decorator_on_an_async_function(store: Store) -> None:
    session = await store.create_session()

    @store.tool(session.id)
    async def search_flights(origin: str, to: str = "MUC", *, max_price: int = 100) -> list[str]:
        """Search flights."""
        await anyio.lowlevel.checkpoint()
        return [f"{origin}-{to}"]

    assert search_flights.__name__ == "search_flights"
    assert search_flights.__doc__ == "Search flights."
    assert await search_flights("BER") == ["BER-MUC"]
    called, result = await store.get_events(session.id)
    assert called.payload == {
        "tool": "search_flights",
        "args": {"origin": "BER", "to": "MUC", "max_price": 100},
    }
    assert result.payload["result"] == ["BER-MUC"]


async def test_tool_decorator_on_an_async_function_that_raises(store: Store) -> None:
    session = await store.create_session()

    @agentstore.tool(store, session.id, name="lookup")
    async def find(code: str) -> str:
        raise KeyError(code)

    with pytest.raises(KeyError):
        await find("XXX")
    called, failed = await store.get_events(session.id)
    assert called.payload == {"tool": "lookup", "args": {"code": "XXX"}}
    assert failed.type == EventType.ERROR
    assert failed.payload["kind"] == "KeyError"


async def test_tool_decorator_on_a_sync_function_with_an_async_store(store: Store) -> None:
    session = await store.create_session()

    @store.tool(session.id)
    def add(a: int, b: int) -> int:
        return a + b

    assert await add(2, 3) == 5

    @store.tool(session.id)
    def fail() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await fail()
    check_events(
        await store.get_events(session.id),
        [EventType.TOOL_CALLED, EventType.TOOL_RESULT, EventType.TOOL_CALLED, EventType.ERROR],
    )


async def test_tool_decorator_needs_a_session(store: Store) -> None:
    with pytest.raises(InvalidInputError, match=r"@store.tool\(session_id\)"):

        @store.tool  # type: ignore[arg-type]
        async def forgot() -> None: ...


def test_sync_store_tracking_and_decorator() -> None:
    with agentstore.open_sync(in_memory=True, pricing=False) as store:
        session = store.create_session()
        with store.track_tool(session.id, "search", {"q": "MUC"}) as call:
            call.result = "EW456"
        with pytest.raises(OSError, match="down"), store.track_tool(session.id, "search"):
            raise OSError("down")
        with store.track_llm(session.id, "gpt-4o", [{"role": "user", "content": "hi"}]) as llm:
            llm.respond("hello", tokens_in=3, tokens_out=1)

        @store.tool(session.id)
        def double(x: int) -> int:
            return 2 * x

        @store.tool(session.id)
        def broken(x: int) -> int:
            raise ArithmeticError(x)

        assert double(21) == 42  # still a sync function
        with pytest.raises(ArithmeticError):
            broken(1)
        events = check_events(
            store.get_events(session.id),
            [
                EventType.TOOL_CALLED,
                EventType.TOOL_RESULT,
                EventType.TOOL_CALLED,
                EventType.ERROR,
                EventType.LLM_REQUEST,
                EventType.LLM_RESPONSE,
                EventType.TOOL_CALLED,
                EventType.TOOL_RESULT,
                EventType.TOOL_CALLED,
                EventType.ERROR,
            ],
        )
        assert events[7].payload["result"] == 42
        state = store.get_state(session.id)
        assert (state.tool_calls, state.errors, state.open_calls) == (4, 2, {})


async def test_sync_store_decorator_on_an_async_function() -> None:
    sync_store: SyncStore = await anyio.to_thread.run_sync(
        lambda: agentstore.open_sync(in_memory=True)
    )
    try:
        session = await anyio.to_thread.run_sync(sync_store.create_session)

        @sync_store.tool(session.id)
        async def fetch(url: str) -> dict[str, Any]:
            await anyio.lowlevel.checkpoint()
            return {"url": url, "status": 200}

        assert await fetch("https://example.org") == {"url": "https://example.org", "status": 200}
        events = await anyio.to_thread.run_sync(sync_store.get_events, session.id)
        check_events(events, [EventType.TOOL_CALLED, EventType.TOOL_RESULT])
    finally:
        await anyio.to_thread.run_sync(sync_store.close)


async def test_a_priced_call_counts_against_the_budget_and_track_llm_refuses_the_next() -> None:
    async with agentstore.open(in_memory=True) as store:  # pricing on
        session = await store.create_session(budget=agentstore.Budget(max_cost_usd=0.001))
        async with store.track_llm(session.id, "gpt-4o") as llm:
            llm.respond("long answer", tokens_in=10_000, tokens_out=1_000)  # about $0.035
        ran = False
        with pytest.raises(agentstore.BudgetExceededError):
            async with store.track_llm(session.id, "gpt-4o"):
                ran = True
        assert not ran  # refused before the model is called
        state = await store.get_state(session.id)
        assert state.tokens.cost_usd > 0.001
        assert state.open_calls == {}

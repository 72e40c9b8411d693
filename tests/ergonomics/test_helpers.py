"""The typed event helpers: payloads, metadata, validation, and what the store makes of them."""

from __future__ import annotations

from typing import Any

import pytest

import agentstore
from agentstore import (
    ErrorPayload,
    EventType,
    InvalidEventError,
    LlmRequest,
    LlmResponse,
    PlanCreated,
    StateUpdated,
    Store,
    ToolCalled,
    ToolResult,
    UserMessage,
)


def test_user_message() -> None:
    event = agentstore.user_message("Find flights BER -> MUC")
    assert event.type == EventType.USER_MESSAGE
    assert event.payload == {"content": "Find flights BER -> MUC", "role": "user"}
    assert agentstore.user_message("be brief", role="system").payload["role"] == "system"
    assert UserMessage.model_validate(event.payload).content == "Find flights BER -> MUC"


def test_plan_created() -> None:
    event = agentstore.plan_created(["search", "filter"], goal="cheapest flight")
    assert event.type == EventType.PLAN_CREATED
    assert event.payload == {"steps": ["search", "filter"], "goal": "cheapest flight"}
    assert agentstore.plan_created(("a",)).payload == {"steps": ["a"]}
    assert PlanCreated.model_validate(event.payload).goal == "cheapest flight"
    with pytest.raises(InvalidEventError, match="steps must be a list"):
        agentstore.plan_created("search, filter")  # type: ignore[arg-type]


def test_tool_called_makes_a_call_id_and_fills_metadata() -> None:
    event = agentstore.tool_called("search_flights", {"to": "MUC"})
    assert event.type == EventType.TOOL_CALLED
    assert event.payload == {"tool": "search_flights", "args": {"to": "MUC"}}
    assert event.metadata.tool_name == "search_flights"
    assert event.metadata.call_id
    other = agentstore.tool_called("search_flights")
    assert other.payload["args"] == {}
    assert other.metadata.call_id != event.metadata.call_id
    assert agentstore.tool_called("t", call_id="c-1").metadata.call_id == "c-1"
    assert ToolCalled.model_validate(event.payload).args == {"to": "MUC"}


def test_tool_result() -> None:
    event = agentstore.tool_result(
        "search_flights", result=[{"flight": "EW456"}], call_id="c-1", duration_ms=1200
    )
    assert event.type == EventType.TOOL_RESULT
    assert event.payload == {"tool": "search_flights", "result": [{"flight": "EW456"}]}
    meta = event.metadata
    assert (meta.tool_name, meta.call_id, meta.duration_ms) == ("search_flights", "c-1", 1200)
    failed = agentstore.tool_result("search_flights", error="timeout")
    assert ToolResult.model_validate(failed.payload).error == "timeout"
    assert failed.metadata.call_id is None


def test_llm_request() -> None:
    messages = [{"role": "user", "content": "hi"}]
    event = agentstore.llm_request("gpt-4o", messages, tokens_in=12, provider="openai")
    assert event.type == EventType.LLM_REQUEST
    assert event.payload == {"model": "gpt-4o", "messages": messages}
    meta = event.metadata
    assert (meta.model, meta.tokens_in, meta.provider) == ("gpt-4o", 12, "openai")
    assert meta.call_id
    prompt = agentstore.llm_request("gpt-4o", prompt="Say hi")
    assert LlmRequest.model_validate(prompt.payload).prompt == "Say hi"


def test_llm_response_carries_usage_in_metadata() -> None:
    event = agentstore.llm_response(
        "claude-sonnet-4-5",
        "EW456 at 65 EUR",
        tokens_in=900,
        tokens_out=120,
        call_id="c-9",
        cache_read_tokens=800,
        cache_write_tokens=50,
        reasoning_tokens=40,
        provider="anthropic",
        finish_reason="stop",
        duration_ms=950,
    )
    assert event.type == EventType.LLM_RESPONSE
    assert event.payload == {
        "model": "claude-sonnet-4-5",
        "content": "EW456 at 65 EUR",
        "finish_reason": "stop",
    }
    meta = event.metadata
    assert (meta.tokens_in, meta.tokens_out, meta.call_id) == (900, 120, "c-9")
    assert (meta.cache_read_tokens, meta.cache_write_tokens, meta.reasoning_tokens) == (
        800,
        50,
        40,
    )
    assert (meta.provider, meta.duration_ms, meta.cost_usd) == ("anthropic", 950, None)
    assert agentstore.llm_response("m", "x", cost_usd=0.5).metadata.cost_usd == 0.5
    assert LlmResponse.model_validate(event.payload).finish_reason == "stop"


def test_state_updated() -> None:
    event = agentstore.state_updated(status="awaiting_confirmation", selected="EW456")
    assert event.type == EventType.STATE_UPDATED
    assert event.payload == {"status": "awaiting_confirmation", "selected": "EW456"}
    assert StateUpdated.model_validate(event.payload).root["selected"] == "EW456"
    with pytest.raises(InvalidEventError, match="at least one"):
        agentstore.state_updated()


def test_error_from_message_and_from_exception() -> None:
    event = agentstore.error("timeout after 30s", kind="TimeoutError", code="TIMEOUT")
    assert event.type == EventType.ERROR
    assert event.payload == {
        "error": "timeout after 30s",
        "kind": "TimeoutError",
        "code": "TIMEOUT",
    }
    try:
        raise ValueError("bad airport code")
    except ValueError as exc:
        from_exc = agentstore.error(exc, recoverable=True, call_id="c-2", tool="search")
    payload = ErrorPayload.model_validate(from_exc.payload)
    assert payload.error == "bad airport code"
    assert payload.kind == "ValueError"
    assert payload.recoverable is True
    assert payload.traceback is not None
    assert "bad airport code" in payload.traceback
    assert (from_exc.metadata.call_id, from_exc.metadata.tool_name) == ("c-2", "search")
    # An exception without a message still says what it was.
    assert agentstore.error(KeyError()).payload["error"] == "KeyError"


class _BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print")


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (_BrokenStr(), "_BrokenStr"),  # its __str__ raises
        (ValueError("bad \udcff byte"), "bad ? byte"),  # a lone surrogate
    ],
)
async def test_an_error_event_records_any_exception(exc: Exception, says: str) -> None:
    """Recording an error that happened must not fail on how its exception prints."""
    try:
        raise exc
    except Exception as caught:
        event = agentstore.error(caught, call_id="c-1", tool="t")
    assert event.payload["error"] == says
    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        await store.append(sid, agentstore.tool_called("t", call_id="c-1"))
        stored = await store.append(sid, event)  # the store takes it
        assert stored.payload["error"] == says
        assert "c-1" not in (await store.get_state(sid)).open_calls


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: agentstore.user_message(42), "content"),  # type: ignore[arg-type]
        (lambda: agentstore.tool_called(""), "tool must be a non-empty string"),
        (lambda: agentstore.tool_called("t", args=[1, 2]), "args"),  # type: ignore[arg-type]
        (lambda: agentstore.tool_result("t", call_id=""), "call_id"),
        (lambda: agentstore.llm_request(None), "model"),  # type: ignore[arg-type]
        (lambda: agentstore.llm_request("m", messages="hi"), "messages must be a list"),
        (lambda: agentstore.llm_response("m", "x", tokens_in=-1), "tokens_in"),
        (lambda: agentstore.llm_response("m", "x", cost_usd=float("nan")), "cost_usd"),
        (lambda: agentstore.error(None), "error"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_raise_invalid_event_error(build: Any, match: str) -> None:
    with pytest.raises(InvalidEventError, match=match):
        build()


async def test_helpers_round_trip_through_the_store(tmp_path: Any) -> None:
    async with agentstore.open(tmp_path / "data", pricing=False) as store:
        assert isinstance(store, Store)
        session = await store.create_session()
        call = agentstore.tool_called("search_flights", {"to": "MUC"})
        request = agentstore.llm_request("gpt-4o", [{"role": "user", "content": "hi"}])
        events = [
            agentstore.user_message("hi"),
            agentstore.plan_created(["search"]),
            call,
            agentstore.tool_result("search_flights", ["EW456"], call_id=call.metadata.call_id),
            request,
            agentstore.llm_response(
                "gpt-4o", "EW456", tokens_in=10, tokens_out=3, call_id=request.metadata.call_id
            ),
            agentstore.state_updated(selected="EW456"),
            agentstore.error("done badly", recoverable=True),
        ]
        for event in events:
            await store.append(session.id, event)
        stored = await store.get_events(session.id)
        assert [e.payload for e in stored] == [e.payload for e in events]
        assert [e.metadata.call_id for e in stored] == [e.metadata.call_id for e in events]
        state = await store.get_state(session.id)
    assert state.tool_calls == 1
    assert state.errors == 1
    assert (state.tokens.input, state.tokens.output) == (10, 3)
    assert state.open_calls == {}  # every call found its result through call_id


async def test_usage_fields_survive_the_file_log(tmp_path: Any) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        session = await store.create_session()
        await store.append(
            session.id,
            agentstore.llm_response(
                "claude-sonnet-4-5",
                "ok",
                tokens_in=900,
                tokens_out=100,
                cache_read_tokens=800,
                cache_write_tokens=50,
                reasoning_tokens=30,
                provider="anthropic",
            ),
        )
    line = (data / "events" / f"{session.id}.jsonl").read_text()
    for key in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "provider"):
        assert f'"{key}":' in line
    async with agentstore.open(data, read_only=True) as reopened:
        [event] = await reopened.get_events(session.id)
    meta = event.metadata
    assert (meta.cache_read_tokens, meta.cache_write_tokens, meta.reasoning_tokens) == (
        800,
        50,
        30,
    )
    assert meta.provider == "anthropic"
    assert meta.cost_usd is not None
    assert meta.cost_usd > 0

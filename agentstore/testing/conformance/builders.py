"""Small builders shared by the conformance tests."""

from __future__ import annotations

from typing import Any

from agentstore import Event, EventType, Metadata, State, default_reducer, new_event


def llm(tokens_in: int = 10, tokens_out: int = 5, cost: float = 0.01, **meta: Any) -> Event:
    """An llm_response with usage metadata."""
    return new_event(EventType.LLM_RESPONSE, {"content": "ok"}).with_metadata(
        Metadata(tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost, **meta)
    )


def mixed_events(n: int) -> list[Event]:
    """A varied session of `n` events: every built-in type, a custom type, metadata."""
    kinds: list[EventType | str] = [*EventType, "cache_hit"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        event = new_event(kind, {"i": i, "nested": {"list": [i, str(i)], "ok": i % 2 == 0}})
        if kind in (EventType.LLM_REQUEST, EventType.LLM_RESPONSE):
            event.with_metadata(Metadata(tokens_in=i, tokens_out=2 * i, cost_usd=i / 1000))
        elif kind == EventType.TOOL_CALLED:
            event.with_metadata(Metadata(tool_name="search", call_id=f"call-{i}"))
        out.append(event)
    return out


def fold(session_id: str, events: list[Event], reducer: Any = default_reducer) -> State:
    """The state the contract promises: every event folded from an empty state."""
    state = State(session_id=session_id)
    for event in events:
        state = reducer(state, event)
    return state


def comparable(state: State) -> dict[str, Any]:
    """A state as plain data, for equality checks."""
    return state.model_dump(mode="json")

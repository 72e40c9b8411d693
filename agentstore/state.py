"""State: what a session's events add up to, folded by a reducer."""

from __future__ import annotations

import copy
import hashlib
import types
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from agentstore.events import Event, EventType

__all__ = ["Reducer", "State", "TokenUsage", "default_reducer"]


class TokenUsage(BaseModel):
    """Tokens and dollars spent by a session's LLM calls.

    Stored as `{"in": …, "out": …, "cost_usd": …}` (the Go original's field names).
    """

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    input: int = Field(default=0, alias="in")
    """Input (prompt) tokens."""
    output: int = Field(default=0, alias="out")
    """Output (completion) tokens."""
    cost_usd: float = 0.0
    """Cost in US dollars."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input + self.output


class State(BaseModel):
    """The state of a session after folding its events through the reducer."""

    model_config = ConfigDict(extra="allow")

    session_id: str
    """The session this state belongs to."""
    version: int = 0
    """The sequence number of the last event folded in (0: none)."""
    data: dict[str, Any] = Field(default_factory=dict)
    """Free-form state; the default reducer keeps the latest payload per event type."""
    last_event_at: datetime | None = None
    """Timestamp of the last event folded in."""
    event_count: int = 0
    """How many events were folded in."""
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    """Token usage and cost of LLM events."""
    tool_calls: int = 0
    """How many `tool_called` events."""
    errors: int = 0
    """How many `error` events."""


Reducer = Callable[[State, Event], State]
"""Folds one event into a state and returns the new state (it may modify the one given)."""


_LLM_TYPES = frozenset((EventType.LLM_REQUEST, EventType.LLM_RESPONSE))


def default_reducer(state: State, event: Event) -> State:
    """Fold `event` into `state` the way the Go original does.

    Counts events, tool calls and errors; adds `tokens_in`, `tokens_out` and `cost_usd`
    from the metadata of `llm_request` and `llm_response` events; keeps each type's
    latest payload in `state.data[type]`. Modifies `state` in place and returns it.
    """
    state.version = event.sequence_number
    state.last_event_at = event.timestamp
    state.event_count += 1
    kind = event.type
    if kind in _LLM_TYPES:
        meta = event.metadata
        tokens = state.tokens
        tokens.input += meta.tokens_in or 0
        tokens.output += meta.tokens_out or 0
        tokens.cost_usd += meta.cost_usd or 0.0
    elif kind == EventType.TOOL_CALLED:
        state.tool_calls += 1
    elif kind == EventType.ERROR:
        state.errors += 1
    state.data[kind] = event.payload
    return state


def _copy_value(value: Any) -> Any:
    cls = type(value)
    if cls is dict:
        return {k: _copy_value(v) for k, v in value.items()}
    if cls is list:
        return [_copy_value(v) for v in value]
    if cls in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def copy_state(state: State) -> State:
    """Return a deep copy of `state` (a fast path for JSON-like data)."""
    out = State.__new__(State)
    fields = dict(state.__dict__)
    fields["data"] = _copy_value(fields["data"])
    fields["tokens"] = state.tokens.model_copy()
    object.__setattr__(out, "__dict__", fields)
    object.__setattr__(out, "__pydantic_fields_set__", set(state.__pydantic_fields_set__))
    extra = state.__pydantic_extra__
    object.__setattr__(out, "__pydantic_extra__", _copy_value(extra) if extra else extra)
    object.__setattr__(out, "__pydantic_private__", state.__pydantic_private__)
    return out


def _code_digest(code: types.CodeType, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, digest)
        else:
            digest.update(repr(const).encode())


def reducer_fingerprint(reducer: Reducer) -> str:
    """Name a reducer, and the version of its code, for snapshots.

    A snapshot is used only by a store whose reducer has the same fingerprint, so a
    changed reducer (or a different one) rebuilds state from the events.
    """
    func: Any = reducer
    if not hasattr(func, "__code__") and hasattr(func, "__call__"):  # noqa: B004
        func = type(func).__call__
    name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
    code = getattr(func, "__code__", None)
    if code is None:
        return name
    digest = hashlib.sha256()
    _code_digest(code, digest)
    return f"{name}:{digest.hexdigest()[:16]}"

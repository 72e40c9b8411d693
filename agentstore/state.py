"""State: what a session's events add up to, folded by a reducer."""

from __future__ import annotations

import copy
import hashlib
import types
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializationInfo,
    computed_field,
    field_serializer,
)

from agentstore.checked_model import CheckedModel
from agentstore.eventjson import aware_utc
from agentstore.events import Event, EventType, StoredEvent
from agentstore.metadata import number_only

__all__ = [
    "Budget",
    "BudgetRemaining",
    "OpenCall",
    "Reducer",
    "State",
    "TokenUsage",
    "default_reducer",
    "last_folded",
]


class Budget(CheckedModel):
    """Spending limits of a session, checked before each `llm_request` is recorded.

    Each limit is a number of at least zero (not a boolean or a string); a bad one raises
    `InvalidInputError`, given or assigned.
    """

    model_config = ConfigDict(validate_assignment=True)
    invalid_what = "budget"

    max_cost_usd: Annotated[
        Annotated[float, Field(ge=0, allow_inf_nan=False)] | None, BeforeValidator(number_only)
    ] = None
    """Refuse new LLM requests once the session has cost this many dollars."""
    max_tokens: Annotated[
        Annotated[int, Field(ge=0, le=2**63 - 1)] | None, BeforeValidator(number_only)
    ] = None
    """Refuse new LLM requests once the session has used this many tokens (in + out).
    At most 2**63 - 1: no store keeps a larger integer (PostgreSQL's jsonb would keep it,
    and read it back as a float that no session could be read with)."""


class BudgetRemaining(BaseModel):
    """What is left of a session's budget (None where the budget sets no limit)."""

    cost_usd: float | None = None
    tokens: int | None = None


class OpenCall(BaseModel):
    """A `tool_called` or `llm_request` whose result has not been recorded yet."""

    sequence_number: int
    """The sequence number of the call event."""
    type: str
    """`tool_called` or `llm_request`."""
    name: str | None = None
    """The tool name or the model."""
    call_id: str | None = None
    """The call's `metadata.call_id` (the key differs when the id repeats)."""


class TokenUsage(BaseModel):
    """Tokens and dollars spent by a session's LLM calls.

    Shown to users (`model_dump()`, JSON) as `{"input", "output", "cost_usd", "total"}`,
    with `cost_usd` rounded to 1e-10 dollars (a sum of floats shows noise otherwise).
    Snapshots on disk are written with `by_alias=True`: `{"in", "out", "cost_usd"}`, the
    Go original's names, with the exact sum. Both forms are read back.
    """

    model_config = ConfigDict(populate_by_name=True)

    input: int = Field(default=0, alias="in")
    """Input (prompt) tokens."""
    output: int = Field(default=0, alias="out")
    """Output (completion) tokens."""
    cost_usd: float = 0.0
    """Cost in US dollars."""

    @field_serializer("cost_usd")
    def _round_cost(self, value: float, info: SerializationInfo) -> float:
        # The on-disk form (by_alias) keeps the exact sum, so a snapshot folds on exactly.
        return value if info.by_alias else round(value, 10)

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
    open_calls: dict[str, OpenCall] = Field(default_factory=dict)
    """Calls without a result yet, by `metadata.call_id`: after a crash, the work to redo.

    A call whose id is already open (ids repeat across responses with some providers, and
    across runs) is keyed `"<call_id>#<sequence_number>"`; a result closes the latest open
    call with its id.
    """
    budget: Budget | None = None
    """The session's budget, if it has one."""

    @property
    def budget_remaining(self) -> BudgetRemaining | None:
        """What is left of the budget (never below zero), or None without a budget."""
        budget = self.budget
        if budget is None:
            return None
        return BudgetRemaining(
            cost_usd=None
            if budget.max_cost_usd is None
            else max(budget.max_cost_usd - self.tokens.cost_usd, 0.0),
            tokens=None
            if budget.max_tokens is None
            else max(budget.max_tokens - self.tokens.total, 0),
        )

    def over_budget(self) -> bool:
        """Tell whether the session is at or over its budget."""
        budget = self.budget
        if budget is None:
            return False
        if budget.max_cost_usd is not None and self.tokens.cost_usd >= budget.max_cost_usd:
            return True
        return budget.max_tokens is not None and self.tokens.total >= budget.max_tokens


Reducer = Callable[[State, Event], State]
"""Folds one event into a state and returns the new state (it may modify the one given)."""


_LLM_TYPES = frozenset((EventType.LLM_REQUEST, EventType.LLM_RESPONSE))
_CALL_TYPES = frozenset((EventType.TOOL_CALLED, EventType.LLM_REQUEST))
_RESULT_TYPES = frozenset((EventType.TOOL_RESULT, EventType.LLM_RESPONSE, EventType.ERROR))


def default_reducer(state: State, event: Event) -> State:
    """Fold `event` into `state` the way the Go original does.

    Counts events, tool calls and errors; adds `tokens_in`, `tokens_out` and `cost_usd`
    from the metadata of `llm_request` and `llm_response` events; keeps each type's
    latest payload in `state.data[type]`. Modifies `state` in place and returns it.

    Beyond the Go original, it tracks open calls: a `tool_called` or `llm_request` with a
    `metadata.call_id` is open until a `tool_result`, `llm_response` or `error` with the
    same `call_id` is folded in (it closes the latest open call with that id).
    """
    if type(state) is not State or (type(event) is not StoredEvent and type(event) is not Event):
        return _reduce_slow(state, event)
    # Straight to the fields: pydantic's __setattr__ costs about 1 µs per assignment, and
    # this runs once per event folded. State does not validate assignments, so the result
    # is the same (fields_set included).
    fields = state.__dict__
    ev = event.__dict__
    kind = ev["type"]
    fields["version"] = ev["sequence_number"]
    fields["last_event_at"] = ev["timestamp"]
    fields["event_count"] += 1
    if kind in _LLM_TYPES:
        meta = ev["metadata"]
        tokens = fields["tokens"]
        counts = tokens.__dict__
        counts["input"] += meta.tokens_in or 0
        counts["output"] += meta.tokens_out or 0
        counts["cost_usd"] += meta.cost_usd or 0.0
        tokens.__pydantic_fields_set__.update(_TOKEN_FIELDS)
        state.__pydantic_fields_set__.update(_FOLDED)
    elif kind == EventType.TOOL_CALLED:
        fields["tool_calls"] += 1
        state.__pydantic_fields_set__.update(_FOLDED_TOOL)
    elif kind == EventType.ERROR:
        fields["errors"] += 1
        state.__pydantic_fields_set__.update(_FOLDED_ERROR)
    else:
        state.__pydantic_fields_set__.update(_FOLDED)
    call_id = ev["metadata"].call_id
    if call_id is not None:
        _track_call(state, event, kind, call_id)
    fields["data"][kind] = ev["payload"]
    return state


def last_folded(state: State, event: Event, reducer: Reducer) -> bool:
    """Tell whether `event` can be the last event folded into `state` (a snapshot's).

    Its number and time must be the state's `version` and `last_event_at`; with the
    default reducer, its payload the one the state keeps for its type. A state that keeps
    no `last_event_at` (a custom reducer's) cannot be told apart: False.
    """
    stamp, last = event.timestamp, state.last_event_at
    if event.sequence_number != state.version or stamp is None or last is None:
        return False
    if aware_utc(stamp) != aware_utc(last):
        return False
    return reducer is not default_reducer or state.data.get(event.type) == event.payload


_FOLDED = ("version", "last_event_at", "event_count")
_FOLDED_TOOL = (*_FOLDED, "tool_calls")
_FOLDED_ERROR = (*_FOLDED, "errors")
_TOKEN_FIELDS = ("input", "output", "cost_usd")


def _track_call(state: State, event: Event, kind: str, call_id: str) -> None:
    # Some providers reuse tool-call ids across responses ("call_0" in every turn), and an
    # interrupted run leaves calls without results. So a call whose id is already open is
    # kept beside it under "<call_id>#<sequence_number>", and a result closes the nearest
    # (latest) open call with its id: an orphan of an earlier run stays in open_calls
    # instead of swallowing the next run's result.
    open_calls = state.open_calls
    if kind in _CALL_TYPES:
        meta = event.metadata
        seq = event.sequence_number
        key = call_id
        while key in open_calls:
            key = f"{key}#{seq}"
        open_calls[key] = OpenCall(
            sequence_number=seq,
            type=kind,
            name=meta.tool_name if kind == EventType.TOOL_CALLED else meta.model,
            call_id=call_id,
        )
    elif kind in _RESULT_TYPES and open_calls:
        nearest = _nearest_open_call(open_calls, call_id)
        if nearest is not None:
            del open_calls[nearest]


def _nearest_open_call(open_calls: dict[str, OpenCall], call_id: str) -> str | None:
    """Return the key of the latest open call with `call_id`, if any."""
    first = open_calls.get(call_id)
    if first is not None and first.call_id in (call_id, None):
        # The plain key is the oldest open call with this id, and repeats were added
        # after it (dicts keep insertion order, which is sequence order): walk back from
        # the newest entry to it. Usually one step, however many orphans are open.
        for key in reversed(open_calls):
            if key == call_id:
                return key
            if open_calls[key].call_id == call_id:
                return key
    # The id's plain key was taken by a repeat of another id that contains "#": look
    # at every open call.
    nearest: str | None = None
    nearest_seq = -1
    for key, call in open_calls.items():
        # Snapshots written before OpenCall had call_id: the key is the id.
        cid = call.call_id if call.call_id is not None else key
        if cid == call_id and call.sequence_number > nearest_seq:
            nearest, nearest_seq = key, call.sequence_number
    return nearest


def _reduce_slow(state: State, event: Event) -> State:
    """`default_reducer` through attribute access (subclasses may validate assignments)."""
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
    call_id = event.metadata.call_id
    if call_id is not None:
        _track_call(state, event, kind, call_id)
    state.data[kind] = event.payload
    return state


_ATOMIC = frozenset((str, int, float, bool, type(None)))


def _copy_value(value: Any) -> Any:
    cls = type(value)
    if cls is dict:
        return {k: v if type(v) in _ATOMIC else _copy_value(v) for k, v in value.items()}
    if cls is list:
        return [v if type(v) in _ATOMIC else _copy_value(v) for v in value]
    if cls in _ATOMIC:
        return value
    return copy.deepcopy(value)


_setattr = object.__setattr__


def _copy_flat(model: Any) -> Any:
    """Copy a pydantic model whose fields are all scalars (TokenUsage, OpenCall, Budget)."""
    cls: Any = type(model)
    out = cls.__new__(cls)
    _setattr(out, "__dict__", model.__dict__.copy())
    _setattr(out, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    extra = model.__pydantic_extra__
    _setattr(out, "__pydantic_extra__", _copy_value(extra) if extra else extra)
    _setattr(out, "__pydantic_private__", model.__pydantic_private__)
    return out


def copy_state(state: State) -> State:
    """Return a deep copy of `state` (a fast path for JSON-like data)."""
    out = State.__new__(State)
    fields = state.__dict__.copy()
    fields["data"] = _copy_value(fields["data"])
    fields["tokens"] = _copy_flat(fields["tokens"])
    if fields["open_calls"]:
        fields["open_calls"] = {k: _copy_flat(v) for k, v in fields["open_calls"].items()}
    else:
        fields["open_calls"] = {}
    if fields["budget"] is not None:
        fields["budget"] = _copy_flat(fields["budget"])
    _setattr(out, "__dict__", fields)
    _setattr(out, "__pydantic_fields_set__", set(state.__pydantic_fields_set__))
    extra = state.__pydantic_extra__
    _setattr(out, "__pydantic_extra__", _copy_value(extra) if extra else extra)
    _setattr(out, "__pydantic_private__", state.__pydantic_private__)
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

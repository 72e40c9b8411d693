"""The calls being recorded: a tool call or an LLM call, and how each becomes events."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from agentstore.events import Event
from agentstore.helpers import (
    error,
    llm_request,
    llm_response,
    new_call_id,
    tool_called,
    tool_result,
)

logger = logging.getLogger("agentstore")

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound="TrackedCall")


class _AsyncAppender(Protocol):
    def append(self, session_id: str, event: Event) -> Awaitable[Event]: ...


class _SyncAppender(Protocol):
    def append(self, session_id: str, event: Event) -> Event: ...


_MAX_DEPTH = 200  # orjson, which writes the event, refuses JSON nested 255 deep
_INT_RANGE = range(-(2**63), 2**64)  # the integers orjson writes as numbers


def to_json_value(value: Any) -> Any:
    """Convert `value` to a JSON value the forgiving way (see the module docstring).

    Never raises: what pydantic's conversion cannot take (bytes that are not UTF-8, a
    cycle, a `repr` that raises) or what the store would refuse (an integer beyond 64
    bits, a lone surrogate, nesting deeper than orjson writes) is converted value by
    value instead, so a call that succeeded is never lost to its recording. An iterator
    (a generator, a `map`, an open file) is recorded as its `repr`: pydantic would drain
    it, leaving the caller an exhausted one (or never end, for an endless one).
    """
    try:
        if _holds_iterator(value):
            return _careful(value, 0, set())
        converted = to_jsonable_python(value, fallback=_repr, inf_nan_mode="null")
        orjson.dumps(converted)  # what the store checks when the event is appended
    except (ValueError, TypeError, RecursionError):  # UnicodeError is a ValueError
        return _careful(value, 0, set())
    return converted


_LEAVES = frozenset({str, int, float, bool, type(None), bytes})
_CONTAINERS = frozenset({list, tuple, set, frozenset})


def _holds_iterator(value: Any, depth: int = 0) -> bool:
    """Whether `value`, or what its dicts, lists, tuples and sets hold, is an iterator.

    Also True past `_MAX_DEPTH` (a cycle, or what the careful path cuts anyway).
    """
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind in _CONTAINERS:
        items = value
    elif kind in _LEAVES:
        return False
    elif isinstance(value, dict):  # OrderedDict, defaultdict...
        items = value.values()
    elif isinstance(value, list | tuple | set | frozenset):  # a namedtuple...
        items = value
    elif isinstance(value, Iterator):
        return True
    else:
        fields = _fields_of(value)  # a model's or a dataclass's: pydantic converts those too
        if fields is None:
            return False
        items = fields.values()
    if depth >= _MAX_DEPTH:
        return True
    for item in items:  # noqa: SIM110 - a loop, not any(...): this runs on every result
        if type(item) not in _LEAVES and _holds_iterator(item, depth + 1):
            return True
    return False


def _fields_of(value: Any) -> dict[str, Any] | None:
    """The fields of a pydantic model or dataclass instance (None for anything else)."""
    if isinstance(value, BaseModel):
        return {**value.__dict__, **(value.__pydantic_extra__ or {})}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    return None


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not lose the call
        return f"<{type(value).__qualname__} object>"


def _careful(value: Any, depth: int, seen: set[int]) -> Any:
    """The slow path of `to_json_value`: one value at a time, never raising."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if value in _INT_RANGE else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return repr(bytes(value))
    if depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict | list | tuple | set | frozenset):
        if id(value) in seen:
            return "<circular reference>"
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                return {_careful_key(k): _careful(v, depth + 1, seen) for k, v in value.items()}
            return [_careful(v, depth + 1, seen) for v in value]
        finally:
            seen.discard(id(value))
    if isinstance(value, Iterator):  # left as it is for the caller, see to_json_value
        return _repr(value)
    fields = _fields_of(value)
    if fields is not None and _holds_iterator(value, depth):
        # A model or dataclass holding an iterator: pydantic's form would drain it. Its
        # fields one by one instead, the iterator as its `repr`.
        if id(value) in seen:
            return "<circular reference>"
        seen.add(id(value))
        try:
            return {_careful_key(k): _careful(v, depth + 1, seen) for k, v in fields.items()}
        finally:
            seen.discard(id(value))
    try:  # a model, dataclass, datetime...: pydantic's form, itself made safe
        converted = to_jsonable_python(value, fallback=_repr, inf_nan_mode="null")
    except (ValueError, TypeError, RecursionError):
        return _repr(value)
    return _careful(converted, depth + 1, seen)


def _careful_key(key: Any) -> str:
    if not isinstance(key, str):
        key = str(key) if key is None or isinstance(key, int | float) else _repr(key)
    return str(key).encode("utf-8", "backslashreplace").decode("utf-8")


class TrackedCall:
    """What the tracking block knows about its call; `call_id` links call and result."""

    def __init__(self, session_id: str, call_id: str | None) -> None:
        self.session_id = session_id
        """The session the call is recorded in."""
        self.call_id = call_id if call_id is not None else new_call_id()
        """Links the call event to its result (or error) event."""
        self.call_event: Event | None = None
        """The stored call event (`tool_called` / `llm_request`), once recorded."""
        self.result_event: Event | None = None
        """The stored result or error event, once the block is left."""
        self.duration_ms: int | None = None
        """How long the block ran, in milliseconds, once it is left."""
        self._started = 0.0

    def _call(self) -> Event:
        raise NotImplementedError

    def _result(self) -> Event:
        raise NotImplementedError

    def _error(self, exc: BaseException) -> Event:
        raise NotImplementedError

    def _start(self) -> None:
        self._started = time.perf_counter()

    def _stop(self) -> None:
        self.duration_ms = max(0, round((time.perf_counter() - self._started) * 1000))


class ToolCall(TrackedCall):
    """A tool call being tracked: set `result` inside the block."""

    def __init__(
        self, session_id: str, tool: str, args: Mapping[str, Any] | None, call_id: str | None
    ) -> None:
        super().__init__(session_id, call_id)
        self.tool = tool
        """The tool's name."""
        self.args: Any = dict(args) if isinstance(args, Mapping) else args
        """The arguments recorded in `tool_called`."""
        self.result: Any = None
        """The tool's result, recorded in `tool_result` when the block is left."""

    def _call(self) -> Event:
        return tool_called(self.tool, self.args, call_id=self.call_id)

    def _result(self) -> Event:
        return tool_result(
            self.tool,
            result=to_json_value(self.result),
            call_id=self.call_id,
            duration_ms=self.duration_ms,
        )

    def _error(self, exc: BaseException) -> Event:
        return error(exc, call_id=self.call_id, tool=self.tool)


class LlmCall(TrackedCall):
    """An LLM call being tracked: call `respond()` inside the block."""

    def __init__(
        self,
        session_id: str,
        model: str,
        messages: Sequence[Any] | None,
        *,
        prompt: str | None,
        provider: str | None,
        call_id: str | None,
    ) -> None:
        super().__init__(session_id, call_id)
        self.model = model
        """The model asked."""
        self.messages = messages
        self.prompt = prompt
        self.provider = provider
        self._response: dict[str, Any] = {}

    def respond(
        self,
        content: str | None,
        *,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        cost_usd: float | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        finish_reason: str | None = None,
        model: str | None = None,
    ) -> None:
        """Set the response recorded in `llm_response` when the block is left.

        Arguments are those of `agentstore.llm_response()`; `model` overrides the
        requested model (e.g. the dated version the API answered with). Without a
        `cost_usd`, the store prices the call. Without `respond()`, the response is
        recorded with no content and no tokens.
        """
        self._response = {
            "content": content,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost_usd": cost_usd,
            "cache_read_tokens": cache_read_tokens,
            "cache_write_tokens": cache_write_tokens,
            "reasoning_tokens": reasoning_tokens,
            "finish_reason": finish_reason,
            "model": model,
        }
        # Check the arguments now, where the caller can see the mistake.
        self._result()

    def _call(self) -> Event:
        messages = to_json_value(self.messages) if self.messages is not None else None
        return llm_request(
            self.model, messages, prompt=self.prompt, call_id=self.call_id, provider=self.provider
        )

    def _result(self) -> Event:
        fields = dict(self._response)
        model = fields.pop("model", None) or self.model
        content = fields.pop("content", None)
        finish_reason = fields.pop("finish_reason", None)
        return llm_response(
            model,
            content,
            call_id=self.call_id,
            provider=self.provider,
            finish_reason=finish_reason,
            duration_ms=self.duration_ms,
            **fields,
        )

    def _error(self, exc: BaseException) -> Event:
        return error(exc, call_id=self.call_id, model=self.model)


def _report_failed_record(call: TrackedCall, failure: BaseException) -> None:
    logger.warning(
        "could not record the error of call %s in session %s: %r",
        call.call_id,
        call.session_id,
        failure,
    )

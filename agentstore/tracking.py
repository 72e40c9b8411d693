"""Tool-call and LLM-call tracking: one `with` block or one decorator per call.

```python
async with store.track_tool(session.id, "search_flights", {"to": "MUC"}) as call:
    call.result = await search_flights(to="MUC")

async with store.track_llm(session.id, "gpt-4o", messages) as llm:
    reply = await client.chat(messages)
    llm.respond(reply.text, tokens_in=reply.usage.input, tokens_out=reply.usage.output)

@store.tool(session.id)
async def search_flights(to: str) -> list[dict[str, str]]: ...
```

Entering a block appends the call (`tool_called` / `llm_request`, with a new `call_id`);
leaving it appends the result (`tool_result` / `llm_response`) with the same `call_id`
and the measured `duration_ms`. If the block raises, an `error` event (message,
exception class, traceback) with the same `call_id` is appended instead and the
exception propagates; if recording that error fails too, the failure is logged and the
original exception still propagates.

Results and decorator arguments are converted to JSON the forgiving way (pydantic
models, dataclasses, datetimes and sets become JSON; anything else its `repr`; NaN and
infinities `null`), so recording never fails after the tool itself succeeded.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, cast

import anyio
import anyio.to_thread
from pydantic_core import to_jsonable_python

from agentstore.errors import InvalidInputError
from agentstore.events import Event
from agentstore.helpers import (
    error,
    llm_request,
    llm_response,
    new_call_id,
    tool_called,
    tool_result,
)

__all__ = [
    "LlmCall",
    "ToolCall",
    "TrackedCall",
    "tool",
    "track_llm",
    "track_tool",
]

logger = logging.getLogger("agentstore")

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound="TrackedCall")


class _AsyncAppender(Protocol):
    def append(self, session_id: str, event: Event) -> Awaitable[Event]: ...


class _SyncAppender(Protocol):
    def append(self, session_id: str, event: Event) -> Event: ...


def to_json_value(value: Any) -> Any:
    """Convert `value` to a JSON value the forgiving way (see the module docstring)."""
    return to_jsonable_python(value, fallback=repr, inf_nan_mode="null")


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


class AsyncTracker(Generic[C]):
    """`async with` block that records a call through an async store."""

    def __init__(self, store: _AsyncAppender, call: C) -> None:
        self._store = store
        self._call = call

    async def __aenter__(self) -> C:
        call = self._call
        call.call_event = await self._store.append(call.session_id, call._call())
        call._start()
        return call

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call = self._call
        call._stop()
        if exc is None:
            call.result_event = await self._store.append(call.session_id, call._result())
            return
        if isinstance(exc, GeneratorExit):
            return
        try:
            # Record the error even when the block was cancelled.
            with anyio.CancelScope(shield=True):
                call.result_event = await self._store.append(call.session_id, call._error(exc))
        except Exception as failure:
            _report_failed_record(call, failure)


class SyncTracker(Generic[C]):
    """`with` block that records a call through a `SyncStore`."""

    def __init__(self, store: _SyncAppender, call: C) -> None:
        self._store = store
        self._call = call

    def __enter__(self) -> C:
        call = self._call
        call.call_event = self._store.append(call.session_id, call._call())
        call._start()
        return call

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call = self._call
        call._stop()
        if exc is None:
            call.result_event = self._store.append(call.session_id, call._result())
            return
        if isinstance(exc, GeneratorExit):
            return
        try:
            call.result_event = self._store.append(call.session_id, call._error(exc))
        except Exception as failure:
            _report_failed_record(call, failure)


def _check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str):
        raise InvalidInputError(
            f"the session id must be a string, not {type(session_id).__name__}: "
            "write @store.tool(session_id) (the session is needed to record the calls)"
        )
    return session_id


def _tool_call(
    session_id: str, tool: str, args: Mapping[str, Any] | None, call_id: str | None
) -> ToolCall:
    call = ToolCall(_check_session_id(session_id), tool, args, call_id)
    call._call()  # check the arguments before the block starts
    return call


def _llm_call(
    session_id: str,
    model: str,
    messages: Sequence[Any] | None,
    *,
    prompt: str | None,
    provider: str | None,
    call_id: str | None,
) -> LlmCall:
    call = LlmCall(
        _check_session_id(session_id),
        model,
        messages,
        prompt=prompt,
        provider=provider,
        call_id=call_id,
    )
    call._call()  # check the arguments before the block starts
    return call


def track_tool(
    store: _AsyncAppender,
    session_id: str,
    tool: str,
    args: Mapping[str, Any] | None = None,
    *,
    call_id: str | None = None,
) -> AsyncTracker[ToolCall]:
    """Track a tool call in an `async with` block (see `Store.track_tool`)."""
    return AsyncTracker(store, _tool_call(session_id, tool, args, call_id))


def track_llm(
    store: _AsyncAppender,
    session_id: str,
    model: str,
    messages: Sequence[Any] | None = None,
    *,
    prompt: str | None = None,
    provider: str | None = None,
    call_id: str | None = None,
) -> AsyncTracker[LlmCall]:
    """Track an LLM call in an `async with` block (see `Store.track_llm`)."""
    call = _llm_call(session_id, model, messages, prompt=prompt, provider=provider, call_id=call_id)
    return AsyncTracker(store, call)


def track_tool_sync(
    store: _SyncAppender,
    session_id: str,
    tool: str,
    args: Mapping[str, Any] | None = None,
    *,
    call_id: str | None = None,
) -> SyncTracker[ToolCall]:
    """Track a tool call in a `with` block (see `SyncStore.track_tool`)."""
    return SyncTracker(store, _tool_call(session_id, tool, args, call_id))


def track_llm_sync(
    store: _SyncAppender,
    session_id: str,
    model: str,
    messages: Sequence[Any] | None = None,
    *,
    prompt: str | None = None,
    provider: str | None = None,
    call_id: str | None = None,
) -> SyncTracker[LlmCall]:
    """Track an LLM call in a `with` block (see `SyncStore.track_llm`)."""
    call = _llm_call(session_id, model, messages, prompt=prompt, provider=provider, call_id=call_id)
    return SyncTracker(store, call)


def _bound_args(sig: inspect.Signature | None, args: Any, kwargs: Any) -> dict[str, Any]:
    if sig is None:
        return {"args": to_json_value(list(args)), "kwargs": to_json_value(kwargs)}
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        # The call itself will raise the same TypeError; record what was passed.
        return {"args": to_json_value(list(args)), "kwargs": to_json_value(kwargs)}
    bound.apply_defaults()
    return {
        name: to_json_value(value)
        for name, value in bound.arguments.items()
        if name not in ("self", "cls")
    }


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def tool_decorator(
    store: _AsyncAppender | _SyncAppender, session_id: str, *, name: str | None = None
) -> Callable[[F], Any]:
    """Return a decorator that records every call of a function as a tracked tool call.

    With an async `Store`, the decorated function is async (a sync function is called
    directly in the event loop and its wrapper must be awaited). With a `SyncStore`, a
    sync function stays sync, and an async one records through a worker thread.
    """
    _check_session_id(session_id)
    store_is_async = inspect.iscoroutinefunction(store.append)

    def decorate(fn: F) -> Any:
        if not callable(fn):
            raise InvalidInputError(f"@tool decorates a function, not {fn!r}")
        tool_name = name if name is not None else getattr(fn, "__name__", "tool")
        sig = _signature(fn)
        fn_is_async = inspect.iscoroutinefunction(fn)

        if store_is_async or fn_is_async:
            if store_is_async:
                appender = cast(_AsyncAppender, store)
            else:
                appender = _ThreadAppender(cast(_SyncAppender, store))

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                recorded = _bound_args(sig, args, kwargs)
                async with track_tool(appender, session_id, tool_name, recorded) as call:
                    value = fn(*args, **kwargs)
                    if fn_is_async:
                        value = await value
                    call.result = value
                return value

            return async_wrapper

        sync_store = cast(_SyncAppender, store)

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            recorded = _bound_args(sig, args, kwargs)
            with track_tool_sync(sync_store, session_id, tool_name, recorded) as call:
                value = fn(*args, **kwargs)
                call.result = value
            return value

        return sync_wrapper

    return decorate


class _ThreadAppender:
    """Append through a `SyncStore` from async code, without blocking the event loop."""

    def __init__(self, store: _SyncAppender) -> None:
        self._store = store

    async def append(self, session_id: str, event: Event) -> Event:
        return await anyio.to_thread.run_sync(self._store.append, session_id, event)


def tool(
    store: _AsyncAppender | _SyncAppender, session_id: str, *, name: str | None = None
) -> Callable[[F], Any]:
    """Decorate a function so that each call is recorded as a tool call in a session.

    ```python
    @agentstore.tool(store, session.id)
    async def search_flights(origin: str, to: str) -> list[dict[str, str]]:
        ...
    ```

    The arguments (bound to parameter names) go into `tool_called`, the return value into
    `tool_result`, an exception into an `error` event (and it propagates). `name`
    defaults to the function's name. Works with `Store` and `SyncStore`; see
    `tool_decorator` for how sync and async functions are wrapped.
    """
    return tool_decorator(store, session_id, name=name)

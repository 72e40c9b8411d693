"""`@store.tool(session_id)` and `@agentstore.tool`: record every call of a function."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, cast

import anyio
import anyio.to_thread

from agentstore.errors import InvalidInputError
from agentstore.events import Event
from agentstore.tracking.calls import F, _AsyncAppender, _SyncAppender, to_json_value
from agentstore.tracking.trackers import _check_session_id, track_tool, track_tool_sync


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

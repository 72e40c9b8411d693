"""`with` and `async with` blocks that record one call: `track_tool`, `track_llm`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Generic

import anyio
import anyio.to_thread

from agentstore.errors import InvalidInputError
from agentstore.tracking.calls import (
    C,
    LlmCall,
    ToolCall,
    _AsyncAppender,
    _report_failed_record,
    _SyncAppender,
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

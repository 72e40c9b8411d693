"""The calls being recorded: a tool call or an LLM call, and how each becomes events."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

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

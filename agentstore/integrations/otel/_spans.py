"""Turn agentstore events into GenAI spans: pairing calls with results, and attributes.

Shared by the batch export and the live listener, so both write the same spans: a
`chat {model}` span per `llm_request` and its `llm_response` (or `error`), and an
`execute_tool {name}` span per `tool_called` and its `tool_result` (or `error`), with
the start and end times of the two events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentstore.events import Event, EventType
from agentstore.integrations.otel import conventions as c

__all__ = ["CallPairer", "call_span", "to_ns"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CALLS = frozenset((EventType.LLM_REQUEST, EventType.TOOL_CALLED))
_RESULTS = frozenset((EventType.LLM_RESPONSE, EventType.TOOL_RESULT, EventType.ERROR))


def to_ns(ts: datetime | None) -> int:
    """Nanoseconds since the epoch, exactly (a float would lose the microseconds).

    A stored event always has a timestamp; one that has none (not stored) is now.
    """
    if ts is None:
        return time.time_ns()
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ((ts - _EPOCH) // timedelta(microseconds=1)) * 1000


class CallPairer:
    """Pair call events with their results the way `State.open_calls` does.

    A result closes the latest open call with its `call_id` in the same session, so ids
    that repeat across responses, and orphans of an interrupted run, pair as they do in
    the state.
    """

    def __init__(self) -> None:
        self._open: dict[str, list[Event]] = {}
        self.count = 0
        """How many calls are open."""

    def feed(self, event: Event) -> tuple[Event, Event] | None:
        """Take one event; return (call, result) when it closes a call."""
        call_id = event.metadata.call_id
        if call_id is None:
            return None
        if event.type in _CALLS:
            self._open.setdefault(call_id, []).append(event)
            self.count += 1
            return None
        if event.type in _RESULTS:
            stack = self._open.get(call_id)
            if stack:
                call = stack.pop()
                if not stack:
                    del self._open[call_id]
                self.count -= 1
                return call, event
        return None

    def open_calls(self) -> list[Event]:
        """The call events without a result, oldest first."""
        return sorted((e for s in self._open.values() for e in s), key=_seq)

    def drop_oldest(self) -> None:
        """Forget the oldest open call (a bound on memory for a long-lived listener)."""
        oldest = min((s[0] for s in self._open.values()), key=_seq, default=None)
        if oldest is None or oldest.metadata.call_id is None:
            return
        stack = self._open[oldest.metadata.call_id]
        stack.remove(oldest)
        if not stack:
            del self._open[oldest.metadata.call_id]
        self.count -= 1


def _seq(event: Event) -> int:
    return event.sequence_number


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _error_type(result: Event) -> str | None:
    """The `error.type` of a result: the exception class of an `error` event, or None."""
    payload = result.payload if isinstance(result.payload, Mapping) else {}
    if result.type == EventType.ERROR:
        kind = payload.get("kind") or payload.get("code")
        return str(kind) if kind else "error"
    if result.type == EventType.TOOL_RESULT and payload.get("error"):
        return "tool_error"
    return None


def _error_message(result: Event) -> str | None:
    payload = result.payload if isinstance(result.payload, Mapping) else {}
    message = payload.get("error")
    return str(message) if message else None


def call_span(
    tracer: trace.Tracer,
    call: Event,
    result: Event | None,
    *,
    parent: Context | None,
    include_content: bool,
    end: datetime | None = None,
) -> trace.Span:
    """Emit (start and end) the span of one call; `result` None marks it open.

    An open call's span ends at `end` (the session's last event) and carries
    `agentstore.open_call = true`.
    """
    meta = call.metadata
    payload = call.payload if isinstance(call.payload, Mapping) else {}
    attrs: dict[str, Any] = {
        c.GEN_AI_CONVERSATION_ID: call.session_id,
        c.AGENTSTORE_SEQUENCE_NUMBER: call.sequence_number,
    }
    if call.type == EventType.LLM_REQUEST:
        model = meta.model or str(payload.get("model") or "")
        name = f"{c.OP_CHAT} {model}".strip()
        kind = SpanKind.CLIENT
        attrs[c.GEN_AI_OPERATION_NAME] = c.OP_CHAT
        if model:
            attrs[c.GEN_AI_REQUEST_MODEL] = model
        provider = meta.provider or (result.metadata.provider if result is not None else None)
        if provider:
            attrs[c.GEN_AI_PROVIDER_NAME] = provider
        if include_content:
            if payload.get("messages") is not None:
                attrs[c.GEN_AI_INPUT_MESSAGES] = _json(payload["messages"])
            if payload.get("prompt"):
                attrs[c.GEN_AI_SYSTEM_INSTRUCTIONS] = str(payload["prompt"])
        if result is not None and result.type == EventType.LLM_RESPONSE:
            _response_attrs(attrs, result, include_content)
        if meta.tokens_in is not None:  # tokens may be recorded on the request instead
            attrs.setdefault(c.GEN_AI_USAGE_INPUT_TOKENS, meta.tokens_in)
    else:
        tool = meta.tool_name or str(payload.get("tool") or "")
        name = f"{c.OP_EXECUTE_TOOL} {tool}".strip()
        kind = SpanKind.INTERNAL
        attrs[c.GEN_AI_OPERATION_NAME] = c.OP_EXECUTE_TOOL
        attrs[c.GEN_AI_TOOL_TYPE] = "function"
        if tool:
            attrs[c.GEN_AI_TOOL_NAME] = tool
        if meta.call_id:
            attrs[c.GEN_AI_TOOL_CALL_ID] = meta.call_id
        if include_content:
            if "args" in payload:
                attrs[c.GEN_AI_TOOL_CALL_ARGUMENTS] = _json(payload["args"])
            if result is not None and result.type == EventType.TOOL_RESULT:
                result_payload = result.payload if isinstance(result.payload, Mapping) else {}
                attrs[c.GEN_AI_TOOL_CALL_RESULT] = _json(result_payload.get("result"))
    if result is None:
        attrs[c.AGENTSTORE_OPEN_CALL] = True
    error_type = _error_type(result) if result is not None else None
    if error_type is not None:
        attrs[c.ERROR_TYPE] = error_type
    span = tracer.start_span(
        name, context=parent, kind=kind, attributes=attrs, start_time=to_ns(call.timestamp)
    )
    if error_type is not None and result is not None:
        span.set_status(Status(StatusCode.ERROR, _error_message(result)))
    finish = result.timestamp if result is not None else (end or call.timestamp)
    span.end(end_time=to_ns(finish))
    return span


def _response_attrs(attrs: dict[str, Any], result: Event, include_content: bool) -> None:
    meta = result.metadata
    payload = result.payload if isinstance(result.payload, Mapping) else {}
    if meta.model:
        attrs[c.GEN_AI_RESPONSE_MODEL] = meta.model
    if meta.tokens_in is not None:
        attrs[c.GEN_AI_USAGE_INPUT_TOKENS] = meta.tokens_in
    if meta.tokens_out is not None:
        attrs[c.GEN_AI_USAGE_OUTPUT_TOKENS] = meta.tokens_out
    if meta.cache_read_tokens is not None:
        attrs[c.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = meta.cache_read_tokens
    if meta.cost_usd is not None:
        attrs[c.AGENTSTORE_COST_USD] = meta.cost_usd
    if payload.get("finish_reason"):
        attrs[c.GEN_AI_RESPONSE_FINISH_REASONS] = [str(payload["finish_reason"])]
    response_id = (meta.extra or {}).get("response_id")
    if response_id:
        attrs[c.GEN_AI_RESPONSE_ID] = response_id
    if include_content and payload.get("content") is not None:
        message = {"role": "assistant", "parts": [{"type": "text", "content": payload["content"]}]}
        attrs[c.GEN_AI_OUTPUT_MESSAGES] = _json([message])

"""Export one stored session as a tree of GenAI spans."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentstore.events import Event, EventType
from agentstore.integrations.otel import conventions as c
from agentstore.integrations.otel._spans import CallPairer, call_span, to_ns

if TYPE_CHECKING:
    from agentstore import Store

__all__ = ["export"]


async def export(
    store: Store,
    session_id: str,
    tracer_provider: trace.TracerProvider,
    *,
    include_content: bool = False,
) -> int:
    """Emit a stored session's spans through `tracer_provider`; return how many.

    ```python
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    await agentstore.integrations.otel.export(store, session.id, provider)
    provider.force_flush()
    ```

    One `invoke_agent` span covers the session (first to last event; named after the
    session's name, with its total tokens), with a `chat {model}` span per LLM call and
    an `execute_tool {name}` span per tool call as children, at the times the events
    were recorded. A call without a result ends at the last event and is marked
    `agentstore.open_call`. Errors that end no call become `exception` span events on
    the session span, which then has status ERROR. Message content, tool arguments and
    results are included only with `include_content=True`.
    """
    session = await store.get_session(session_id)
    events = await store.get_events(session.id)
    tracer = tracer_provider.get_tracer(c.TRACER_NAME, schema_url=c.SCHEMA_URL)
    if not events:
        start = end = to_ns(session.created_at)
    else:
        start, end = to_ns(events[0].timestamp), to_ns(events[-1].timestamp)
    agent = session.name or None
    attrs: dict[str, Any] = {
        c.GEN_AI_OPERATION_NAME: c.OP_INVOKE_AGENT,
        c.GEN_AI_CONVERSATION_ID: session.id,
    }
    if agent:
        attrs[c.GEN_AI_AGENT_NAME] = agent
    name = f"{c.OP_INVOKE_AGENT} {agent}" if agent else c.OP_INVOKE_AGENT
    root = tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs, start_time=start)
    parent = trace.set_span_in_context(root)
    pairer = CallPairer()
    count = 1
    tokens_in = tokens_out = 0
    last_error: Event | None = None
    for event in events:
        meta = event.metadata
        if event.type in (EventType.LLM_REQUEST, EventType.LLM_RESPONSE):
            tokens_in += meta.tokens_in or 0
            tokens_out += meta.tokens_out or 0
        pair = pairer.feed(event)
        if pair is not None:
            call_span(tracer, pair[0], pair[1], parent=parent, include_content=include_content)
            count += 1
        elif event.type == EventType.ERROR:
            # An error that closed no call: it belongs to the run as a whole.
            last_error = event
            root.add_event("exception", _exception_attrs(event), timestamp=to_ns(event.timestamp))
    last = events[-1].timestamp if events else None
    for call in pairer.open_calls():
        call_span(tracer, call, None, parent=parent, include_content=include_content, end=last)
        count += 1
    root.set_attribute(c.GEN_AI_USAGE_INPUT_TOKENS, tokens_in)
    root.set_attribute(c.GEN_AI_USAGE_OUTPUT_TOKENS, tokens_out)
    if last_error is not None:
        kind = _exception_attrs(last_error)["exception.type"]
        root.set_attribute(c.ERROR_TYPE, kind)
        root.set_status(Status(StatusCode.ERROR, _exception_attrs(last_error)["exception.message"]))
    root.end(end_time=end)
    return count


def _exception_attrs(event: Event) -> dict[str, str]:
    payload = event.payload if isinstance(event.payload, Mapping) else {}
    return {
        "exception.type": str(payload.get("kind") or payload.get("code") or "error"),
        "exception.message": str(payload.get("error") or ""),
        c.AGENTSTORE_EVENT_TYPE: str(event.type),
    }

"""Emit spans as events are appended: the listener behind `open(..., tracer_provider=tp)`."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from agentstore.events import Event
from agentstore.integrations.otel import conventions as c
from agentstore.integrations.otel._spans import CallPairer, call_span, to_ns

__all__ = ["live_listener", "session_trace_context"]

logger = logging.getLogger("agentstore")

AppendListener = Callable[[Sequence[Event]], None]


def session_trace_context(session_id: str) -> Context:
    """The parent of a session's live spans: one trace per session, ids from its id.

    A session has no "run finished" event, so the live view has no `invoke_agent` span
    that could end; its spans share a trace whose id is derived from the session id
    (under a remote parent with a derived span id), so a backend shows them together.
    """
    digest = hashlib.sha256(session_id.encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    parent = SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def live_listener(
    tracer_provider: trace.TracerProvider,
    *,
    include_content: bool = False,
    max_open_calls: int = 10_000,
) -> AppendListener:
    """Return a callable that turns appended events into spans as they arrive.

    ```python
    listener = live_listener(provider)
    listener(stored_events)   # what Store.add_append_listener(listener) does per append
    ```

    A `chat {model}` or `execute_tool {name}` span is emitted when the result (or
    error) of a call is appended, from the call's time to the result's, with the same
    attributes as `export`. Calls are paired per session as `State.open_calls` pairs
    them. At most `max_open_calls` calls wait for their results (the oldest are
    forgotten past that: orphans of interrupted runs must not grow memory forever).
    The listener never raises: a failure to emit is logged.
    """
    if max_open_calls < 1:
        from agentstore.errors import InvalidInputError

        raise InvalidInputError(f"max_open_calls must be at least 1, not {max_open_calls!r}")
    tracer = tracer_provider.get_tracer(c.TRACER_NAME, schema_url=c.SCHEMA_URL)
    pairers: dict[str, CallPairer] = {}
    open_total = [0]
    lock = threading.Lock()  # appends may come from the sync facade's thread too

    def on_append(events: Sequence[Event]) -> None:
        try:
            with lock:
                for event in events:
                    _feed(event)
        except Exception:  # never break an append because a span could not be made
            logger.exception("agentstore: could not emit an OpenTelemetry span")

    def _feed(event: Event) -> None:
        pairer = pairers.get(event.session_id)
        if pairer is None:
            if event.metadata.call_id is None:
                return
            pairer = pairers[event.session_id] = CallPairer()
        before = pairer.count
        pair = pairer.feed(event)
        open_total[0] += pairer.count - before
        if pair is not None:
            parent = session_trace_context(event.session_id)
            call_span(tracer, pair[0], pair[1], parent=parent, include_content=include_content)
        if pairer.count == 0:
            del pairers[event.session_id]
        while open_total[0] > max_open_calls:
            _forget_oldest()

    def _forget_oldest() -> None:
        sid = min(
            (sid for sid, p in pairers.items() if p.count),
            key=lambda s: to_ns(pairers[s].open_calls()[0].timestamp),
        )
        pairer = pairers[sid]
        pairer.drop_oldest()
        open_total[0] -= 1
        if pairer.count == 0:
            del pairers[sid]

    return on_append

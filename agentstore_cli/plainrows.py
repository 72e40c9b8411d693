"""Timeline rows as text for a pipe or a file: the loop behind `Timeline.rows_plain`.

A 100,000-event timeline written to a pipe spent most of its time here, at about 5 µs a
row in many small calls (a `Plain` to append to, a metadata read per helper, the row
start formatted field by field). `plain_rows` does a page in one loop: the totals in
locals, the time column formatted once per distinct timestamp, the metadata read once
and only by the types that show it, and each built-in type that is common in a long
session (messages, tool calls and results, LLM calls) summarised by one function that
returns its text. Every other type goes through `Timeline._summary`, as a terminal row
does. The text is the styled row's, character for character, cut to the same width:
`tests/cli/test_timeline_plain.py` compares the two over every type and hostile input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from agentstore import Event, EventType, Metadata
from agentstore_cli.formats import fmt_bytes, fmt_cost, fmt_duration, fmt_elapsed
from agentstore_cli.payloadtext import call_args, first_of, preview, result_shape, text_of
from agentstore_cli.rowtext import Plain, fit, narrow_only
from agentstore_cli.sanitize import clean

if TYPE_CHECKING:
    from agentstore_cli.render import Timeline

__all__ = ["Call", "llm_figures", "pair", "plain_rows", "remember_call", "shown_type"]

_MAX_OPEN_CALLS = 10_000  # calls never answered must not grow the table without end
_TYPE_WIDTH = 13  # len("state_updated"), the longest built-in type
_SHOWN_TYPES: dict[str, str] = {}


def shown_type(kind: str) -> str:
    """The type column: `kind` padded to its width, or cut with an ellipsis."""
    shown = _SHOWN_TYPES.get(kind)
    if shown is None:
        shown = kind if len(kind) <= _TYPE_WIDTH else kind[: _TYPE_WIDTH - 1] + "…"
        shown = f"{shown:<{_TYPE_WIDTH}}"
        if len(_SHOWN_TYPES) < 1000:  # user types are few; a hostile log must not grow it
            _SHOWN_TYPES[kind] = shown
    return shown


@dataclass(slots=True)
class Call:
    """A tool or LLM call shown in the timeline, waiting for its result."""

    seq: int
    ts: datetime | None
    name: str | None


def remember_call(calls: dict[str, Call], call_id: str, call: Call) -> None:
    """Keep `call` under `call_id` until its result; drop the oldest past the limit."""
    calls[call_id] = call
    if len(calls) > _MAX_OPEN_CALLS:
        calls.pop(next(iter(calls)))


def pair(calls: dict[str, Call], event: Event, meta: Metadata) -> tuple[Call | None, float | None]:
    """Match a result with its call by call_id; return the call and the duration (ms)."""
    call_id = meta.call_id
    call = calls.pop(call_id, None) if call_id is not None else None
    if meta.duration_ms is not None:
        return call, float(meta.duration_ms)
    if call is not None and call.ts is not None and event.timestamp is not None:
        return call, (event.timestamp - call.ts).total_seconds() * 1000
    return call, None


def _named(value: Any) -> str | None:
    return str(value) if value is not None else None


# --- one summary per common type: the text `Timeline._summary` writes, without styles ---


def _user_message(calls: dict[str, Call], event: Event, payload: Any) -> str:
    return text_of(payload, "content", "message", "text", "prompt")


def _tool_called(calls: dict[str, Call], event: Event, payload: Any) -> str:
    meta = event.metadata
    name = _named(meta.tool_name or first_of(payload, "tool", "tool_name", "name"))
    if meta.call_id is not None:
        remember_call(calls, meta.call_id, Call(event.sequence_number, event.timestamp, name))
    return f"{clean(name or '?')}({call_args(payload)})"


def _tool_result(calls: dict[str, Call], event: Event, payload: Any) -> str:
    meta = event.metadata
    call, duration = pair(calls, event, meta)
    name = _named(meta.tool_name or first_of(payload, "tool", "tool_name", "name")) or (
        call.name if call is not None else None
    )
    shape = result_shape(payload)
    parts = [shape] if shape is not None else []
    parts.append(fmt_bytes(len(orjson.dumps(payload))))
    if duration is not None:
        parts.append(f"in {fmt_duration(duration)}")
    if call is not None:
        parts.append(f"call #{call.seq}")
    head = f"{clean(name or '?')} → {', '.join(parts)}"
    error = first_of(payload, "error")
    if error is not None:
        return f"{head} · error: {preview(error, 200)}"
    result = first_of(payload, "result", "results", "output")
    return f"{head} · {preview(result if result is not None else payload)}"


def llm_figures(meta: Metadata, duration: float | None) -> list[str]:
    """An LLM row's figures: tokens in and out, cost, duration (those it has)."""
    parts: list[str] = []
    if meta.tokens_in is not None:
        parts.append(f"{meta.tokens_in:,} in")
    if meta.tokens_out is not None:
        parts.append(f"{meta.tokens_out:,} out")
    if meta.cost_usd is not None:
        parts.append(fmt_cost(meta.cost_usd))
    if duration is not None:
        parts.append(f"in {fmt_duration(duration)}")
    return parts


def _llm(meta: Metadata, payload: Any, call: Call | None, duration: float | None, text: str) -> str:
    model = _named(meta.model or first_of(payload, "model")) or (
        call.name if call is not None else None
    )
    parts = llm_figures(meta, duration)
    shown = clean(model) + (" · " if parts else "") if model is not None else ""
    shown += " · ".join(parts)
    if text:
        shown += (" · " if parts or model else "") + text
    return shown


def _llm_request(calls: dict[str, Call], event: Event, payload: Any) -> str:
    meta = event.metadata
    if meta.call_id is not None:
        name = _named(meta.model or first_of(payload, "model"))
        remember_call(calls, meta.call_id, Call(event.sequence_number, event.timestamp, name))
    text = text_of(payload, "prompt", "messages", "input", "content")
    return _llm(meta, payload, None, None, text)


def _llm_response(calls: dict[str, Call], event: Event, payload: Any) -> str:
    meta = event.metadata
    call, duration = pair(calls, event, meta)
    text = text_of(payload, "content", "text", "output", "message")
    return _llm(meta, payload, call, duration, text)


_Summary = Callable[[dict[str, Call], Event, Any], str]
_SUMMARIES: dict[str, _Summary] = {
    EventType.USER_MESSAGE.value: _user_message,
    EventType.TOOL_CALLED.value: _tool_called,
    EventType.TOOL_RESULT.value: _tool_result,
    EventType.LLM_REQUEST.value: _llm_request,
    EventType.LLM_RESPONSE.value: _llm_response,
}
_LLM = frozenset((EventType.LLM_REQUEST.value, EventType.LLM_RESPONSE.value))
_TOOL_CALLED = EventType.TOOL_CALLED.value
_ERROR = EventType.ERROR.value
_NO_TIME_COLUMN = "+0.000s".rjust(8)
_TYPE_COLUMNS: dict[str, str] = {}  # a type's column and the two spaces after it


def plain_rows(timeline: Timeline, events: Iterable[Event], width: int) -> str:
    """Return the rows of `events` cut to `width` cells, each ending in a newline, and
    count them in `timeline`'s totals (what `Timeline.row_plain` does for each)."""
    calls = timeline._calls
    summary = timeline._summary
    first, last = timeline.first_ts, timeline.last_ts
    count = tool_calls = errors = tokens_in = tokens_out = 0
    cost = timeline.cost_usd  # added to in the same order as one row at a time
    seq_width = timeline.seq_width
    type_cols = _TYPE_COLUMNS
    narrow = narrow_only
    last_ts: datetime | None = None
    time_col = "+0.000s".rjust(8)  # the time column of `last_ts`, padded
    lines: list[str] = []
    add = lines.append
    try:
        for event in events:
            kind = event.type
            count += 1
            if kind in _LLM:
                meta = event.metadata
                tokens_in += meta.tokens_in or 0
                tokens_out += meta.tokens_out or 0
                cost += meta.cost_usd or 0.0
            elif kind == _TOOL_CALLED:
                tool_calls += 1
            elif kind == _ERROR:
                errors += 1
            ts = event.timestamp
            if ts is None:
                col = _NO_TIME_COLUMN
            else:
                if first is None:
                    first = ts
                last = ts
                if ts != last_ts:  # events of one batch share a timestamp: format it once
                    elapsed = (ts - first).total_seconds()
                    elapsed = elapsed if elapsed > 0.0 else 0.0
                    # Below 9.999 s fmt_elapsed's first form for sure, without the call.
                    shown = f"+{elapsed:.3f}s" if elapsed < 9.999 else fmt_elapsed(elapsed)
                    time_col = shown.rjust(8)
                    last_ts = ts
                col = time_col
            make = _SUMMARIES.get(kind)
            if make is not None:
                text = make(calls, event, event.payload)
            else:
                out = Plain()
                summary(event, out)
                text = "".join(out.parts)
            type_col = type_cols.get(kind)
            if type_col is None:
                type_col = shown_type(kind) + "  "
                if len(type_cols) < 1000:  # user types are few; a hostile log must not grow it
                    type_cols[kind] = type_col
            line = str(event.sequence_number).rjust(seq_width) + "  " + col + "  " + type_col + text
            # `fit` inline for the rows made of one-cell characters only: nearly all
            if line.isascii() or narrow(line):
                add(line if len(line) <= width else line[: width - 1] + "…")
            else:
                add(fit(line, width))
    finally:
        timeline.first_ts, timeline.last_ts = first, last
        timeline.events += count
        timeline.tool_calls += tool_calls
        timeline.errors += errors
        timeline.tokens_in += tokens_in
        timeline.tokens_out += tokens_out
        timeline.cost_usd = cost
    lines.append("")
    return "\n".join(lines)

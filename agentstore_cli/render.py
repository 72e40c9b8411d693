"""Rich renderers: the replay timeline, one-line event summaries and number formats.

Everything taken from a store (payloads, names, labels, tool and model names) goes
through `sanitize.clean` and into `rich.text.Text` objects, which never interpret markup,
so a payload holding `[red]` or an ESC sequence is shown as text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.text import Text

from agentstore import Event, EventType
from agentstore_cli.formats import (
    fmt_ago,
    fmt_bytes,
    fmt_cost,
    fmt_duration,
    fmt_elapsed,
    fmt_int,
    fmt_time,
)
from agentstore_cli.payloadtext import (
    call_args,
    first_of,
    model_name,
    preview,
    result_shape,
    text_of,
    tool_name,
)
from agentstore_cli.plainrows import (
    Call,
    llm_figures,
    pair,
    plain_rows,
    remember_call,
    shown_type,
)
from agentstore_cli.rowtext import Out, fit
from agentstore_cli.sanitize import clean

__all__ = [
    "TYPE_STYLES",
    "Timeline",
    "fmt_bytes",
    "fmt_cost",
    "fmt_duration",
    "fmt_ago",
    "fmt_elapsed",
    "fmt_int",
    "fmt_time",
    "fit",
    "make_console",
    "preview",
    "print_line",
    "safe",
]

TYPE_STYLES: dict[str, str] = {
    EventType.USER_MESSAGE: "bold cyan",
    EventType.PLAN_CREATED: "blue",
    EventType.TOOL_CALLED: "yellow",
    EventType.TOOL_RESULT: "green",
    EventType.LLM_REQUEST: "magenta",
    EventType.LLM_RESPONSE: "bold magenta",
    EventType.STATE_UPDATED: "dim",
    EventType.ERROR: "bold white on red",
    EventType.CUSTOM: "white",
}
"""Colour of each built-in event type in the timeline (user types: `white`)."""


def make_console(*, stderr: bool = False) -> Console:
    """Return a console for command output.

    Markup, emoji codes and highlighting are off (output is built from `Text`); Rich
    itself leaves colour out when `NO_COLOR` is set or the output is not a terminal, and
    takes the width from the terminal (or `COLUMNS`, 80 in a pipe).
    """
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


def print_line(console: Console, text: Text) -> None:
    """Print `text` as exactly one line, cut with an ellipsis at the console's width."""
    console.print(text, no_wrap=True, overflow="ellipsis", crop=True)


def safe(value: object, style: str = "") -> Text:
    """Return `value` as a `Text` with control characters escaped and no markup."""
    return Text(clean(value if isinstance(value, str) else str(value)), style=style)


@dataclass
class Timeline:
    """Renders events as one-line rows and keeps the totals for the footer.

    Rows show the sequence number, the time since the first shown event, the type and a
    summary of what matters for that type. A result's duration comes from
    `metadata.duration_ms`, else from the time since the call with the same
    `metadata.call_id`.
    """

    seq_width: int = 3
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    events: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    tool_calls: int = 0
    errors: int = 0
    _calls: dict[str, Call] = field(default_factory=dict)

    def row(self, event: Event) -> Text:
        """Return the row of one event (and count it in the totals)."""
        elapsed = self._start(event)
        kind = str(event.type)
        text = Text(no_wrap=True, overflow="ellipsis", end="\n")
        text.append(f"{event.sequence_number:>{self.seq_width}}  ", style="dim")
        text.append(f"{fmt_elapsed(elapsed):>8}  ", style="dim")
        text.append(shown_type(kind), style=TYPE_STYLES.get(kind, "white"))
        text.append("  ")
        self._summary(event, text)
        return text

    def row_plain(self, event: Event, width: int) -> str:
        """Return the row of one event as text cut to `width` cells, without styles.

        The same characters as `row(event)` truncated to `width` (and the same totals),
        without building a Rich renderable: for output that is not a terminal.
        """
        return plain_rows(self, (event,), width)[:-1]

    def rows_plain(self, events: Iterable[Event], width: int) -> str:
        """Return `row_plain` of each event, each line ending in a newline."""
        return plain_rows(self, events, width)

    def _start(self, event: Event) -> float:
        """Count `event` in the totals; return the seconds since the first shown event."""
        self.events += 1
        kind = event.type
        if kind == EventType.LLM_RESPONSE or kind == EventType.LLM_REQUEST:
            meta = event.metadata
            self.tokens_in += meta.tokens_in or 0
            self.tokens_out += meta.tokens_out or 0
            self.cost_usd += meta.cost_usd or 0.0
        elif kind == EventType.TOOL_CALLED:
            self.tool_calls += 1
        elif kind == EventType.ERROR:
            self.errors += 1
        ts = event.timestamp
        if ts is None:
            return 0.0
        first = self.first_ts
        if first is None:
            self.first_ts = first = ts
        self.last_ts = ts
        elapsed = (ts - first).total_seconds()
        return elapsed if elapsed > 0.0 else 0.0

    def _pair(self, event: Event) -> tuple[Call | None, float | None]:
        """Match a result with its call by call_id; return the call and the duration."""
        return pair(self._calls, event, event.metadata)

    def summary(self, event: Event, out: Out | None = None) -> Text:
        """Return the one-line summary of an event's payload and metadata.

        With `out`, the summary is written there instead (and an empty `Text` returned).
        """
        text = Text()
        self._summary(event, text if out is None else out)
        return text

    def _summary(self, event: Event, out: Out) -> None:
        kind = event.type
        payload = event.payload
        meta = event.metadata
        if meta.call_id is not None and kind in (EventType.TOOL_CALLED, EventType.LLM_REQUEST):
            name = tool_name(event) if kind == EventType.TOOL_CALLED else model_name(event)
            remember_call(
                self._calls, meta.call_id, Call(event.sequence_number, event.timestamp, name)
            )
        if kind == EventType.USER_MESSAGE:
            out.append(text_of(payload, "content", "message", "text", "prompt"))
        elif kind == EventType.TOOL_CALLED:
            out.append(clean(tool_name(event) or "?"), style="bold")
            out.append(f"({call_args(payload)})")
        elif kind == EventType.PLAN_CREATED:
            self._plan(out, payload)
        elif kind == EventType.TOOL_RESULT:
            self._tool_result(out, event)
        elif kind == EventType.LLM_REQUEST:
            self._llm(out, event, text_of(payload, "prompt", "messages", "input", "content"))
        elif kind == EventType.LLM_RESPONSE:
            self._llm(out, event, text_of(payload, "content", "text", "output", "message"))
        elif kind == EventType.ERROR:
            self._error(out, event)
        else:
            out.append(preview(payload) if payload is not None else "")

    def _plan(self, out: Out, payload: Any) -> None:
        goal = first_of(payload, "goal", "objective")
        steps = first_of(payload, "steps", "plan")
        if goal is not None:
            out.append("goal: ", style="dim")
            out.append(preview(goal, 120))
            out.append(" · ", style="dim")
        if isinstance(steps, list):
            names = []
            for step in steps:
                label = first_of(step, "name", "tool", "title", "description", "step")
                names.append(preview(label if label is not None else step, 60))
            out.append(f"{len(steps)} step{'s' if len(steps) != 1 else ''}: ")
            out.append(" → ".join(names))
        elif goal is None:
            out.append(preview(payload))

    def _tool_result(self, out: Out, event: Event) -> None:
        call, duration = self._pair(event)
        name = tool_name(event) or (call.name if call is not None else None)
        out.append(clean(name or "?"), style="bold")
        out.append(" → ")
        payload = event.payload
        error = first_of(payload, "error")
        parts: list[str] = []
        shape = result_shape(payload)
        if shape is not None:
            parts.append(shape)
        parts.append(fmt_bytes(len(orjson.dumps(payload))))
        if duration is not None:
            parts.append(f"in {fmt_duration(duration)}")
        if call is not None:
            parts.append(f"call #{call.seq}")
        out.append(", ".join(parts))
        if error is not None:
            out.append(" · error: ", style="bold red")
            out.append(preview(error, 200), style="red")
        else:
            result = first_of(payload, "result", "results", "output")
            out.append(" · ", style="dim")
            out.append(preview(result if result is not None else payload), style="dim")

    def _llm(self, out: Out, event: Event, text: str) -> None:
        meta = event.metadata
        call, duration = self._pair(event) if event.type == EventType.LLM_RESPONSE else (None, None)
        model = model_name(event) or (call.name if call is not None else None)
        parts = llm_figures(meta, duration)
        if model is not None:
            out.append(clean(model), style="bold")
            if parts:
                out.append(" · ", style="dim")
        out.append(" · ".join(parts), style="cyan")
        if text:
            out.append(" · " if parts or model else "", style="dim")
            out.append(text)

    def _error(self, out: Out, event: Event) -> None:
        payload = event.payload
        kind = first_of(payload, "type", "error_type", "kind", "code")
        if kind is not None:
            out.append(preview(kind, 60) + ": ", style="bold red")
        out.append(text_of(payload, "message", "error", "detail", "reason"), style="red")
        if first_of(payload, "recoverable") is True:
            out.append(" (recoverable)", style="dim")
        call_id = event.metadata.call_id
        call = self._calls.pop(call_id, None) if call_id is not None else None
        if call is not None:
            out.append(f" · call #{call.seq}", style="dim")

    def open_calls(self) -> list[tuple[int, str | None]]:
        """The calls shown that no result or error answered: (sequence number, name)."""
        return sorted((call.seq, call.name) for call in self._calls.values())

    def footer(
        self,
        total_events: int | None = None,
        *,
        width: int | None = None,
        open_calls: bool = False,
    ) -> Text:
        """Return the totals line for the events shown so far.

        With `width`, the line breaks between its parts (never inside one) to fit; with
        `open_calls`, it counts the calls that never got a result (as `stats` does):
        only right when every event after them was shown.
        """
        wall = (
            (self.last_ts - self.first_ts).total_seconds() * 1000
            if self.first_ts is not None and self.last_ts is not None
            else 0.0
        )
        shown = fmt_int(self.events)
        if total_events is not None and total_events != self.events:
            shown += f" of {fmt_int(total_events)}"
        parts: list[tuple[str, str]] = [
            (f"{shown} event{'s' if total_events != 1 and self.events != 1 else ''}", "bold"),
            (
                f"{fmt_int(self.tokens_in + self.tokens_out)} tokens "
                f"({fmt_int(self.tokens_in)} in / {fmt_int(self.tokens_out)} out)",
                "bold",
            ),
            (fmt_cost(self.cost_usd), "bold"),
            (f"{fmt_int(self.tool_calls)} tool call{'s' if self.tool_calls != 1 else ''}", "bold"),
            (
                f"{fmt_int(self.errors)} error{'s' if self.errors != 1 else ''}",
                "bold red" if self.errors else "bold",
            ),
        ]
        unanswered = len(self._calls) if open_calls else 0
        if unanswered:
            parts.append((f"{fmt_int(unanswered)} without result", "bold yellow"))
        parts.append((f"{fmt_duration(wall)} wall time", "bold"))
        text = Text()
        used = 0
        for index, (part, style) in enumerate(parts):
            if index:
                if width is not None and used + 3 + len(part) > width:
                    text.append("\n")
                    used = 0
                else:
                    text.append(" · ", style="dim")
                    used += 3
            text.append(part, style=style)
            used += len(part)
        return text

    def open_calls_line(self, width: int) -> Text | None:
        """List the calls without a result: `without result: #5 search_flights, #9 gpt-4o`."""
        calls = self.open_calls()
        if not calls:
            return None
        text = Text("without result: ", style="yellow")
        text.append(", ".join(f"#{seq} {clean(name or '?')}" for seq, name in calls[:20]))
        if len(calls) > 20:
            text.append(f", and {len(calls) - 20} more")
        text.truncate(width, overflow="ellipsis")
        return text

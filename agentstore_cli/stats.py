"""`agentstore stats`: what a session added up to: tokens, cost, tools, models, errors."""

from __future__ import annotations

import contextlib
from enum import StrEnum
from typing import Annotated

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentstore import Session, State

# The computation lives in the library: the server returns the same JSON.
from agentstore.stats import SessionStats, collect_stats, stats_json
from agentstore_cli.common import (
    DataDirOption,
    SessionArg,
    open_store,
    resolve_session,
    run,
    write_bytes,
)
from agentstore_cli.events_iter import EventQuery, iter_events
from agentstore_cli.headers import session_header
from agentstore_cli.render import (
    TYPE_STYLES,
    fmt_cost,
    fmt_duration,
    fmt_int,
    fmt_time,
    make_console,
    print_line,
    safe,
)

__all__ = ["SessionStats", "StatsFormat", "collect_stats", "stats", "stats_json"]


_MAX_OPEN_CALLS = 20  # the text view lists the oldest; --format json lists all


class StatsFormat(StrEnum):
    """Output formats of `stats`."""

    text = "text"
    json = "json"


def stats(
    ctx: typer.Context,
    session: SessionArg,
    at: Annotated[
        int | None,
        typer.Option("--at", min=0, metavar="SEQ", help="Stats as of event SEQ (time travel)."),
    ] = None,
    fmt: Annotated[
        StatsFormat,
        typer.Option(
            "--format", "-o", metavar="FORMAT", help="text (for people) or json (one object)."
        ),
    ] = StatsFormat.text,
    data_dir: DataDirOption = None,
) -> None:
    """Summarise a session: tokens, cost, tool calls, errors, per model and per tool.

    \b
    Examples:
      agentstore stats 3f2a
      agentstore stats 3f2a --at 40
      agentstore stats 3f2a --format json | jq .tokens.cost_usd
    """

    async def main() -> None:
        async with open_store(ctx, data_dir) as store:
            sid = await resolve_session(store, session)
            info = await store.get_session(sid)
            state = await store.get_state(sid, at_seq=at)
            query = EventQuery(to_seq=at) if at is not None else EventQuery()
            if at == 0:
                figures = SessionStats()
            else:
                async with contextlib.aclosing(iter_events(store, sid, query)) as events:
                    figures = await collect_stats(events)
        if fmt is StatsFormat.json:
            write_bytes(orjson.dumps(stats_json(info, state, figures, at)) + b"\n")
        else:
            print_stats(make_console(), info, state, figures, at)

    run(main)


def _table(*columns: str) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold",
    )
    for index, name in enumerate(columns):
        table.add_column(name, justify="left" if index == 0 else "right", no_wrap=True)
    return table


def print_stats(
    console: Console, info: Session, state: State, figures: SessionStats, at: int | None
) -> None:
    """Print the `stats` text view."""
    print_line(console, session_header(info))
    rows: list[tuple[str, Text]] = []
    if at is not None:
        rows.append(("as of", Text(f"event {at} of {fmt_int(info.event_count)}")))
    rows.append(("created", Text(f"{fmt_time(info.created_at)} UTC")))
    rows.append(
        ("first event", Text(f"{fmt_time(figures.first_ts)} UTC" if figures.first_ts else "-"))
    )
    rows.append(("duration", Text(fmt_duration(figures.duration_ms))))
    rows.append(("events", Text(fmt_int(state.event_count))))
    rows.append(("tool calls", Text(fmt_int(state.tool_calls))))
    errors = Text(fmt_int(state.errors), style="bold red" if state.errors else "")
    if figures.last_error is not None:
        errors.append("  last: ", style="dim")
        errors.append_text(safe(figures.last_error[:200], "red"))
    rows.append(("errors", errors))
    tokens = state.tokens
    rows.append(
        (
            "tokens",
            Text(
                f"{fmt_int(tokens.total)} ({fmt_int(tokens.input)} in / "
                f"{fmt_int(tokens.output)} out)"
            ),
        )
    )
    cost = Text(fmt_cost(tokens.cost_usd), style="bold")
    if figures.unpriced:
        # Calls without a known price count $0: say so, so that a cost (and a cost budget)
        # never passes as complete when it is not.
        n_calls = f"{fmt_int(figures.unpriced)} call{'s' if figures.unpriced != 1 else ''}"
        cost.append(f"  + {n_calls} without a price (counted as $0)", style="bold yellow")
    rows.append(("cost", cost))
    remaining = state.budget_remaining
    if state.budget is not None and remaining is not None:
        parts = []
        if state.budget.max_cost_usd is not None and remaining.cost_usd is not None:
            parts.append(f"{fmt_cost(remaining.cost_usd)} of {fmt_cost(state.budget.max_cost_usd)}")
        if state.budget.max_tokens is not None and remaining.tokens is not None:
            parts.append(
                f"{fmt_int(remaining.tokens)} of {fmt_int(state.budget.max_tokens)} tokens"
            )
        if state.budget.max_cost_usd is not None and figures.unpriced and parts:
            parts[0] += " (at most: some calls have no price)"
        over = state.over_budget()
        rows.append(
            (
                "budget left",
                Text(
                    " · ".join(parts) + (" (exhausted)" if over else ""),
                    style="bold red" if over else "",
                ),
            )
        )
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim", no_wrap=True)
    summary.add_column(overflow="ellipsis", no_wrap=True)
    for label, value in rows:
        summary.add_row(label, value)
    console.print(summary)

    if figures.types:
        table = _table("TYPE", "EVENTS")
        for kind, count in sorted(figures.types.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(safe(kind, TYPE_STYLES.get(kind, "white")), Text(fmt_int(count)))
        console.print()
        console.print(table)
    if figures.models:
        table = _table("MODEL", "CALLS", "TOKENS IN", "TOKENS OUT", "COST")
        for name, m in sorted(figures.models.items(), key=lambda kv: -kv[1].cost_usd):
            table.add_row(
                safe(name, "magenta"),
                Text(fmt_int(max(m.requests, m.responses))),
                Text(fmt_int(m.tokens_in)),
                Text(fmt_int(m.tokens_out)),
                Text(fmt_cost(m.cost_usd)),
            )
        console.print()
        console.print(table)
    if figures.tools:
        table = _table("TOOL", "CALLS", "RESULTS", "FAILED", "TOTAL TIME", "MEAN TIME")
        for name, t in sorted(figures.tools.items(), key=lambda kv: (-kv[1].calls, kv[0])):
            table.add_row(
                safe(name, "yellow"),
                Text(fmt_int(t.calls)),
                Text(fmt_int(t.results)),
                Text(fmt_int(t.failed), style="red" if t.failed else ""),
                Text(fmt_duration(t.total_ms) if t.timed else "-"),
                Text(fmt_duration(t.total_ms / t.timed) if t.timed else "-"),
            )
        console.print()
        console.print(table)
    if state.open_calls:
        table = _table("OPEN CALL", "SEQ", "TYPE", "NAME")
        calls = sorted(state.open_calls.items(), key=lambda kv: kv[1].sequence_number)
        for call_id, call in calls[:_MAX_OPEN_CALLS]:
            table.add_row(
                safe(call_id),
                Text(str(call.sequence_number)),
                safe(call.type),
                safe(call.name or "-"),
            )
        console.print()
        console.print(
            Text("Calls without a result (work to redo after a crash):", style="bold yellow")
        )
        console.print(table)
        if len(calls) > _MAX_OPEN_CALLS:
            more = len(calls) - _MAX_OPEN_CALLS
            console.print(
                Text(f"... and {fmt_int(more)} more (all of them in --format json)", style="dim")
            )

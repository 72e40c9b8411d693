"""`agentstore reprice`: what a session's LLM calls cost with today's price data.

It reads the session, prices every LLM event that has a model and token counts with the
current `genai-prices` data (at each event's own time, so historic prices apply), and
shows the recorded and the recomputed cost per model and in total. It never writes.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentstore.pricing import RepriceReport, reprice_session
from agentstore_cli.common import (
    DataDirOption,
    SessionArg,
    open_store,
    resolve_session,
    run,
    write_bytes,
)
from agentstore_cli.render import fmt_cost, fmt_int, make_console, print_line, safe

__all__ = ["RepriceFormat", "print_report", "reprice"]


class RepriceFormat(StrEnum):
    """Output formats of `reprice`."""

    text = "text"
    json = "json"


def reprice(
    ctx: typer.Context,
    session: SessionArg,
    fmt: Annotated[
        RepriceFormat,
        typer.Option(
            "--format", "-o", metavar="FORMAT", help="text (for people) or json (one object)."
        ),
    ] = RepriceFormat.text,
    data_dir: DataDirOption = None,
) -> None:
    """Recompute a session's LLM costs with the current price data (the log is not changed).

    \b
    Examples:
      agentstore reprice 3f2a
      agentstore reprice 3f2a --format json | jq .new_cost_usd
    """

    # The report lists unpriced models itself: the pricer's log line would repeat it.
    logging.getLogger("agentstore.pricing").addHandler(logging.NullHandler())

    async def main() -> RepriceReport:
        async with open_store(ctx, data_dir) as store:
            sid = await resolve_session(store, session)
            return await reprice_session(store, sid)

    report = run(main)
    if fmt is RepriceFormat.json:
        write_bytes(orjson.dumps(report.to_dict()) + b"\n")
    else:
        print_report(make_console(), report)


_HEADINGS = ("MODEL", "EVENTS", "TOKENS IN", "TOKENS OUT", "RECORDED", "REPRICED", "CHANGE")


def _change(old: float, new: float) -> Text:
    diff = new - old
    if abs(diff) < 5e-7:
        return Text("=", style="dim")
    sign = "+" if diff > 0 else "-"
    return Text(f"{sign}{fmt_cost(abs(diff))}", style="red" if diff > 0 else "green")


def print_report(console: Console, report: RepriceReport) -> None:
    """Print the per-model table of recorded and recomputed costs."""
    if not report.models:
        console.print(Text(f"session {report.session_id}: no LLM events with token counts"))
        return
    # The style of the other tables (no edge padding); numbers are never cut: the model
    # name takes what the other columns leave.
    print_line(console, Text(f"session {report.session_id}"))
    rows: list[list[Text]] = []
    for row in report.models:
        model = safe(row.model)
        if row.unpriced:
            model.append(f" ({row.unpriced} unpriced)", style="yellow")
        rows.append(
            [
                model,
                Text(fmt_int(row.events)),
                Text(fmt_int(row.tokens_in)),
                Text(fmt_int(row.tokens_out)),
                Text(fmt_cost(row.old_cost_usd)),
                Text(fmt_cost(row.new_cost_usd)),
                _change(row.old_cost_usd, row.new_cost_usd),
            ]
        )
    total = [
        Text("total", style="bold"),
        Text(fmt_int(sum(m.events for m in report.models))),
        Text(fmt_int(sum(m.tokens_in for m in report.models))),
        Text(fmt_int(sum(m.tokens_out for m in report.models))),
        Text(fmt_cost(report.old_cost_usd)),
        Text(fmt_cost(report.new_cost_usd)),
        _change(report.old_cost_usd, report.new_cost_usd),
    ]
    widths = [
        max(len(h), *(r[i].cell_len for r in [*rows, total])) for i, h in enumerate(_HEADINGS)
    ]
    widths[0] = max(5, min(widths[0], console.width - sum(widths[1:]) - 2 * (len(widths) - 1)))
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold",
    )
    for index, heading in enumerate(_HEADINGS):
        table.add_column(
            heading,
            width=widths[index],
            no_wrap=True,
            overflow="ellipsis",
            justify="left" if index == 0 else "right",
        )
    for cells in rows:
        table.add_row(*cells)
    table.add_section()
    table.add_row(*total)
    console.print(table)
    console.print()
    source = report.source or "no price found"
    console.print(Text(f"price data: {source}; the session's log was not changed", style="dim"))

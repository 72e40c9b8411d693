"""`agentstore sessions`: list sessions, newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import orjson
import typer
from rich import box
from rich.table import Table
from rich.text import Text

from agentstore import AgentStoreError, Session, State, Store
from agentstore.backends.base import SkippedSession
from agentstore_cli.common import (
    CliError,
    DataDirOption,
    LabelOption,
    listing,
    open_store,
    parse_labels,
    run,
    write_bytes,
)
from agentstore_cli.render import fmt_ago, fmt_cost, fmt_int, fmt_time, make_console, safe
from agentstore_cli.sanitize import clean

__all__ = ["SessionsFormat", "sessions"]


_FULL_ID_WIDTH = 110
_HEADINGS = ("ID", "NAME", "EVENTS", "TOKENS", "COST", "CREATED", "LAST EVENT")
_NAME = 1


class SessionsFormat(StrEnum):
    """Output formats of `sessions`."""

    table = "table"
    json = "json"
    jsonl = "jsonl"


def sessions(
    ctx: typer.Context,
    label: LabelOption = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, metavar="N", help="Show at most this many sessions."),
    ] = 50,
    offset: Annotated[
        int,
        typer.Option("--offset", min=0, metavar="N", help="Skip this many of the newest sessions."),
    ] = 0,
    fmt: Annotated[
        SessionsFormat,
        typer.Option(
            "--format",
            "-o",
            metavar="FORMAT",
            help="table (for people), json (one array) or jsonl (one session per line).",
        ),
    ] = SessionsFormat.table,
    data_dir: DataDirOption = None,
) -> None:
    """List sessions, newest first.

    \b
    Examples:
      agentstore sessions --label env=prod --limit 10
      agentstore sessions --format json | jq -r '.[].id'

    On a terminal narrower than 110 columns, ids are cut to 8 characters; any unique
    prefix of an id works with the other commands. Times are UTC. json and jsonl print
    each session's on-disk fields (id, name, created_at, updated_at, event_count,
    labels, ...); the table adds tokens and cost. A session whose file cannot be read is
    named on stderr and the others are listed; the command then exits 1.
    """
    labels = parse_labels(label)

    async def main() -> None:
        async with open_store(ctx, data_dir) as store:
            found, skipped = await listing(store, limit=limit, offset=offset, labels=labels)
            _say_skipped(skipped)
            unreadable = await _show(store, found, fmt)
        _fail_if_incomplete(len(skipped), unreadable)

    run(main)


def _say_skipped(skipped: list[SkippedSession]) -> None:
    """Name each session the listing passed over, and why, one line each on stderr (the
    same lines whether the store is local or a server)."""
    console = make_console(stderr=True)
    for item in skipped:
        line = Text("skipped: ", style="bold red").append(clean(str(item)))
        console.print(line, soft_wrap=True)


def _fail_if_incomplete(skipped: int, unreadable: int) -> None:
    """Exit 1 (as copy and verify do for a partial failure) if a session was left out of
    the listing or shown without its state; the listing itself was printed."""
    parts = []
    if skipped:
        parts.append(
            f"{skipped} session{'s' if skipped > 1 else ''} could not be read and "
            f"{'are' if skipped > 1 else 'is'} not listed (see above)"
        )
    if unreadable:
        parts.append(f"{unreadable} of these sessions could not be read (marked 'unreadable')")
    if parts:
        raise CliError("; ".join(parts) + ": run 'agentstore verify' to see where")


async def _show(store: Store, found: list[Session], fmt: SessionsFormat) -> int:
    """Print `found` in `fmt`; return how many of the table's sessions had no state."""
    if fmt is SessionsFormat.json:
        body = b",\n".join(orjson.dumps(s.to_dict()) for s in found)
        write_bytes(b"[\n" + body + b"\n]\n" if found else b"[]\n")
        return 0
    if fmt is SessionsFormat.jsonl:
        for s in found:
            write_bytes(orjson.dumps(s.to_dict()) + b"\n", flush=True)
        return 0
    states: list[State | None] = []
    for s in found:
        try:
            states.append(await store.get_state(s.id))
        except AgentStoreError:
            # A corrupt log spoils its own row, not the listing.
            states.append(None)
    _print_table(found, states)
    return states.count(None)


def _print_table(found: list[Session], states: list[State | None]) -> None:
    console = make_console()
    if not found:
        console.print(Text("No sessions.", style="dim"))
        return
    # Full ids need ~125 columns; on a narrower terminal show 8 characters, like git's
    # short hashes (any unique prefix works with the other commands).
    short = console.width < _FULL_ID_WIDTH
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        header_style="bold",
    )
    now = datetime.now(UTC)
    rows: list[list[Text]] = []
    for session, state in zip(found, states, strict=True):
        last = fmt_ago(session.updated_at, now) if session.event_count else "-"
        rows.append(
            [
                safe(session.id[:8] if short else session.id),
                safe(session.name) if session.name else Text("(unnamed)", style="dim"),
                Text(fmt_int(session.event_count)),
                Text(fmt_int(state.tokens.total))
                if state is not None
                else Text("unreadable", style="bold red"),
                Text(fmt_cost(state.tokens.cost_usd)) if state is not None else Text("-"),
                Text(fmt_time(session.created_at, seconds=False)),
                Text(last),
            ]
        )
    # Every column but NAME is exactly as wide as its widest cell or heading, so no
    # heading or number is ever cut; NAME takes what is left (at most 40) and cuts long
    # names with an ellipsis.
    widths = [max(len(h), *(r[i].cell_len for r in rows)) for i, h in enumerate(_HEADINGS)]
    others = sum(w for i, w in enumerate(widths) if i != _NAME) + 2 * (len(widths) - 1)
    widths[_NAME] = max(4, min(widths[_NAME], 40, console.width - others))
    for index, heading in enumerate(_HEADINGS):
        table.add_column(
            heading,
            width=widths[index],
            no_wrap=True,
            overflow="ellipsis",
            justify="right" if heading in ("EVENTS", "TOKENS", "COST") else "left",
            style="cyan" if heading == "ID" else "",
        )
    for row in rows:
        table.add_row(*row)
    console.print(table)

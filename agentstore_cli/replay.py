"""`agentstore replay`: a session's events as a timeline, JSON, JSON lines, or step by step."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterator
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from agentstore import Event, Session, Store
from agentstore_cli.common import (
    DataDirOption,
    SessionArg,
    UsageError,
    open_store,
    resolve_session,
    run,
    write_bytes,
)
from agentstore_cli.events_iter import (
    EventQuery,
    follow_events,
    iter_events,
    iter_pages,
    parse_types,
)
from agentstore_cli.headers import session_header
from agentstore_cli.render import Timeline, make_console, print_line
from agentstore_cli.timeparse import parse_time

__all__ = ["ReplayFormat", "replay", "write_json_array"]


class ReplayFormat(StrEnum):
    """Output formats of `replay`."""

    timeline = "timeline"
    json = "json"
    jsonl = "jsonl"


_INT64_MAX = 2**63 - 1


def _at_most_int64(value: int | None) -> int | None:
    return None if value is None else min(value, _INT64_MAX)


def replay(
    ctx: typer.Context,
    session: SessionArg,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            "-t",
            metavar="TYPES",
            help="Only these event types, comma-separated (e.g. tool_called,error).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="TIME", help="Only events at or after TIME: ISO-8601, or ago like 10m, 2h."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="TIME", help="Only events at or before TIME: ISO-8601, or ago like 10m."
        ),
    ] = None,
    from_seq: Annotated[
        int | None,
        typer.Option("--from-seq", min=1, metavar="N", help="First sequence number to show."),
    ] = None,
    to_seq: Annotated[
        int | None,
        typer.Option("--to-seq", min=1, metavar="N", help="Last sequence number to show."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, metavar="N", help="Show at most N events.")
    ] = None,
    fmt: Annotated[
        ReplayFormat,
        typer.Option(
            "--format",
            "-o",
            metavar="FORMAT",
            help="timeline for people (no colour in a pipe); json (one array) or jsonl "
            "(one event per line) with exactly the on-disk fields.",
        ),
    ] = ReplayFormat.timeline,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep printing new events as they are appended (by any process) "
            "until Ctrl-C. Timeline or jsonl.",
        ),
    ] = False,
    step: Annotated[
        bool,
        typer.Option(
            "--step",
            help="Step through events one at a time with the state after each "
            "(Enter/n next, p previous, q quit). Needs a terminal.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show what happened in a session, event by event.

    \b
    Examples:
      agentstore replay 3f2a
      agentstore replay 3f2a --type tool_called,tool_result --since 2h
      agentstore replay 3f2a --from-seq 40 --to-seq 60
      agentstore replay 3f2a --format json | jq '.[] | select(.type == "error")'
      agentstore replay 3f2a --follow --format jsonl | jq -c .payload
      agentstore replay 3f2a --step

    The timeline shows each event's sequence number, time since the first shown event,
    type and a one-line summary, cut to the terminal width, then the totals. Times given
    without a zone are UTC.
    """
    query = EventQuery(
        types=parse_types(type_),
        since=parse_time(since, option="--since") if since is not None else None,
        until=parse_time(until, option="--until") if until is not None else None,
        # No store numbers past 2**63 - 1 (PostgreSQL's bigint refused the bound itself):
        # a larger bound reads the same as that one.
        from_seq=_at_most_int64(from_seq),
        to_seq=_at_most_int64(to_seq),
        limit=_at_most_int64(limit),
    )
    if from_seq is not None and to_seq is not None and to_seq < from_seq:
        raise UsageError(f"--to-seq {to_seq} is before --from-seq {from_seq}")
    if follow and fmt is ReplayFormat.json:
        raise UsageError("--follow prints events as they come: use --format jsonl or timeline")
    if step and (follow or fmt is not ReplayFormat.timeline):
        raise UsageError("--step cannot be combined with --follow or --format")
    if step:
        from agentstore_cli.step import run_pager

        run_pager(ctx, data_dir, session, query)
        return

    timeline = Timeline()
    state: dict[str, Session] = {}

    async def main() -> None:
        async with open_store(ctx, data_dir) as store:
            sid = await resolve_session(store, session)
            info = await store.get_session(sid)
            state["session"] = info
            if fmt is ReplayFormat.timeline:
                await _timeline(store, info, query, timeline, follow=follow)
            elif fmt is ReplayFormat.json:
                async with contextlib.aclosing(iter_events(store, sid, query)) as events:
                    await write_json_array(events)
            else:
                source = follow_events if follow else iter_events
                async with contextlib.aclosing(source(store, sid, query)) as events:
                    async for event in events:
                        write_bytes(event.to_json() + b"\n", flush=True)

    try:
        with _heap_frozen():
            run(main)
    except KeyboardInterrupt:
        # Ctrl-C ends --follow: a normal way out, so exit 0 (after the totals).
        if not follow:
            raise
        if fmt is ReplayFormat.timeline and "session" in state:
            console = make_console()
            console.print(Rule(style="dim"))
            console.print(timeline.footer(width=console.width))


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """Keep the objects that exist now (the modules, the app) out of the collector's walks.

    A full collection during a long replay walks every object of the process, most of
    them made by the imports: about 20 ms each here. They are frozen while the command
    runs (`gc.freeze`) and handed back to the collector after (`gc.unfreeze`).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def write_json_array(
    events: AsyncIterable[Event], write: Callable[[bytes], object] | None = None
) -> int:
    """Write events as one JSON array, one event per line, without holding them all.

    Writes to stdout unless `write` is given; returns how many events were written.
    """
    out = write if write is not None else write_bytes
    count = 0
    async for event in events:
        out((b"[\n" if not count else b",\n") + event.to_json())
        count += 1
    out(b"[]\n" if not count else b"\n]\n")
    if write is None:
        write_bytes(b"", flush=True)
    return count


# The first page is about one screen, so the first rows show before a full page is read.
_FIRST_PAGE = 100


async def _timeline(
    store: Store,
    info: Session,
    query: EventQuery,
    timeline: Timeline,
    *,
    follow: bool,
    console: Console | None = None,
) -> None:
    """Print the header, then each page of rows as soon as it is read, then the totals."""
    console = console if console is not None else make_console()
    timeline.seq_width = max(len(str(info.event_count)), 3)
    print_line(console, session_header(info))
    pages: AsyncGenerator[list[Event], None]
    if follow:  # each event its own page: written the moment it is appended
        pages = _one_by_one(follow_events(store, info.id, query))
    else:
        pages = iter_pages(store, info.id, query, first_page=_FIRST_PAGE)
    async with contextlib.aclosing(pages):
        if console.is_terminal:
            await _styled_rows(console, pages, timeline)
        else:
            await _plain_rows(console, pages, timeline)
    console.print(Rule(style="dim"))
    filtered = query != EventQuery()
    # Calls without a result are known only if every event after them was shown.
    to_the_end = (
        query.types is None and query.to_seq is None and query.until is None and query.limit is None
    )
    total = None if filtered else info.event_count
    console.print(timeline.footer(total, width=console.width, open_calls=to_the_end))
    line = timeline.open_calls_line(console.width) if to_the_end else None
    if line is not None:
        console.print(line)


async def _one_by_one(events: AsyncGenerator[Event, None]) -> AsyncGenerator[list[Event], None]:
    """Pages of one event each (for --follow)."""
    async with contextlib.aclosing(events):
        async for event in events:
            yield [event]


async def _styled_rows(
    console: Console, pages: AsyncIterator[list[Event]], timeline: Timeline
) -> None:
    """Rows for a terminal: styled, cut to the width here, one Rich render and one write
    per page of events (per event with --follow)."""
    width = console.width
    for_terminal = timeline.row
    async for page in pages:
        rows: list[Text] = []
        for event in page:
            row = for_terminal(event)
            plain = row.plain
            if len(plain) > width or not plain.isascii():
                row.truncate(width, overflow="ellipsis")
            rows.append(row)
        console.print(Text("\n").join(rows), soft_wrap=True)
        console.file.flush()


async def _plain_rows(
    console: Console, pages: AsyncIterator[list[Event]], timeline: Timeline
) -> None:
    """Rows for a pipe or a file: text built with string formatting (no styles, so no
    Rich renderable per event), one write per page of events as it is read."""
    width = console.width
    write, flush = console.file.write, console.file.flush
    rows = timeline.rows_plain
    async for page in pages:
        text = rows(page, width)
        del page  # the events go before the next page is read (see `iter_pages`)
        write(text)
        flush()

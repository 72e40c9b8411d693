"""`agentstore copy SRC DST`: copy sessions between two stores, keeping everything.

Ids, sequence numbers, timestamps, payloads, metadata and how `append_many` batched the
events (`Backend.batch_marks`) are kept, so a data directory copied into PostgreSQL and back
gives byte-identical event lines. Each session is copied in one atomic step
(`Store.import_session`), so an interrupted copy leaves every session whole or absent, and
running the same command again resumes: sessions already complete in DST are skipped, and
one that grew in SRC since gets only its new events, appended batch by batch as in SRC
(a batch larger than a server DST takes in one request is appended in parts, which DST
then marks as batches of their own).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

import agentstore
from agentstore import Event, Session, Store
from agentstore.backends.registry import scheme_of
from agentstore.errors import (
    AgentStoreError,
    SessionExistsError,
    SessionNotFoundError,
    StorageUnavailableError,
    StoreClosedError,
    StoreLockedError,
)
from agentstore.store.lifecycle_ops import check_same_event, check_same_session, replay_reader
from agentstore.store.validate import pending_from_stored
from agentstore_cli.common import (
    CliError,
    PageWalk,
    UsageError,
    listing_log_muted,
    next_page_cursor,
    resolve_session,
    run,
)
from agentstore_cli.copymarks import compact_marks
from agentstore_cli.sanitize import clean

__all__ = ["copy"]

_PAGE = 500
_READ = 1000
"""Events read from SRC at once."""
_STORE_GONE = (StorageUnavailableError, StoreClosedError, StoreLockedError)
"""Errors of a store, not of a session: they end the copy."""
_RACES = 3
"""Times a session is looked at again when another copy created it in DST meanwhile."""
_ALL = 2**31 - 1  # every id (the largest limit the gRPC door takes)


def _check_target(what: str, target: str) -> None:
    if scheme_of(target) == "memory":
        raise UsageError(f"{what} {target!r}: an in-memory store lives only in one process")


async def _session_ids(src: Store, wanted: list[str] | None) -> list[str]:
    if wanted:  # as every command names a session: id, prefix, name or latest; once each
        return list(dict.fromkeys([await resolve_session(src, ref) for ref in wanted]))
    ids: list[str] = []
    skipped: dict[str, None] = {}  # in order, once each: named on every page
    cursor: str | None = None
    seen = PageWalk()
    # The copy names each session it cannot read itself (reading it fails it): the
    # listing's log line of each, once a page, would say it again.
    with listing_log_muted():
        while True:
            page = await src.list_sessions_page(limit=_PAGE, cursor=cursor)
            ids.extend(s.id for s in page.sessions)
            skipped.update(dict.fromkeys(s.session_id for s in page.skipped))
            cursor = next_page_cursor(page, seen)
            if cursor is None:
                break
    ids.reverse()  # oldest first: a resumed copy redoes the newest
    # A listing leaves out a session whose file it cannot read, so that one bad file does
    # not hide the others; a copy must not: the ids the listing lacks come last, where
    # reading them fails the copy after everything else is copied. The pages name them
    # (through a server too, whose FindSessionIds gives at most 1000 ids: one past those
    # was copied by nobody, the copy exiting 0); find_session_ids adds what a backend (an
    # older server) does not name.
    listed = set(ids)
    ids.extend(sid for sid in skipped if sid not in listed)
    listed.update(skipped)
    ids.extend(sid for sid in await src.backend.find_session_ids("", _ALL) if sid not in listed)
    return ids


async def _copy_one(src: Store, dst: Store, session: Session) -> tuple[str, int]:
    """Copy one session; return what happened ("copied", "extended", "skipped") and events."""
    try:
        there = await dst.get_session(session.id)
    except SessionNotFoundError:
        marks, upto = await _marks(src, session)
        if not upto or await src.replay(session.id, from_seq=upto, to_seq=upto):
            # Read as it is written, a page at a time: a session of any size is never
            # held whole (a 200,000-event one took 1.4 GB).
            async with contextlib.aclosing(_events(src, session, upto)) as stream:
                copied = await dst.import_session(session, stream, batch_marks=marks)
            return "copied", copied.event_count
        # Fewer events than the marks tell of (read from a replica that lags the primary
        # the marks come from): they end at a batch's end all the same, keep theirs.
        events = await src.replay(session.id, to_seq=upto)
        last = events[-1].sequence_number if events else 0
        if marks is not None:
            marks = {seq: end for seq, end in marks.items() if seq <= last}
        await dst.import_session(session, events, batch_marks=marks)
        return "copied", len(events)
    if there.created_at != session.created_at:
        # A copy keeps the creation time: another time is another session under this id
        # (the only sign of one when SRC's has no events to compare).
        raise CliError(
            f"session {session.id} differs between the two stores (created "
            f"{session.created_at.isoformat()} in SRC, {there.created_at.isoformat()} in "
            "DST); not copied"
        )
    # The log is checked before anything is written: another session under this id (a
    # diverged history) is refused with DST as it was, its name and labels too.
    have = there.event_count
    if have >= session.event_count:
        # Copied before: the same log has the same event at SRC's last position.
        n = session.event_count
        if n and [e.id for e in await src.replay(session.id, from_seq=n, to_seq=n)] != [
            e.id for e in await dst.replay(session.id, from_seq=n, to_seq=n)
        ]:
            raise CliError(f"session {session.id} differs between the two stores; not copied")
        updated = await _bring_details(dst, session, there)
        return ("updated" if updated else "skipped"), 0
    # DST holds the beginning of this session (copied before SRC grew): check it is the same
    # log, then append the rest with its own sequence numbers and timestamps. SRC's event
    # `have`, read first, is read again with the first page appended (see `_events`).
    at_have = await src.replay(session.id, from_seq=have, to_seq=have)
    before = at_have[-1] if at_have else None
    if not await _same_ids(src, dst, session.id, have):
        raise CliError(
            f"session {session.id} differs between the two stores (its events 1..{have} "
            "are not the same); not copied"
        )
    await _bring_details(dst, session, there)
    marks, upto = await _marks(src, session)
    # Batch by batch, as SRC's were appended: an append marks its own batch. Each is
    # atomic, and a copy stopped between two resumes as above. From a store that keeps no
    # batch bounds, a page an append: one by one would cost an append (an fsync) per event.
    written = 0
    async with contextlib.aclosing(_events(src, session, upto, have + 1, before)) as stream:
        async for batch in _batches(stream, marks):
            written += await _append_batch(dst, session.id, batch)
    return "extended", written


async def _append_batch(dst: Store, session_id: str, batch: list[Event]) -> int:
    """Append one of SRC's batches to DST whole; one too large for DST's requests (a
    server's --max-body-bytes: append_many has no such limit in a process) in halves,
    each whole. Refused whole, the copy could never extend the session (a new session
    is imported in parts); split, DST marks the halves as two batches."""
    pending = [pending_from_stored(event) for event in batch]
    try:
        await dst.backend.append(session_id, pending, batch[0].sequence_number - 1)
    except AgentStoreError as exc:
        if getattr(exc, "code", None) != "payload_too_large" or len(batch) == 1:
            raise
        half = len(batch) // 2
        await _append_batch(dst, session_id, batch[:half])
        await _append_batch(dst, session_id, batch[half:])
    return len(batch)


async def _events(
    src: Store, session: Session, upto: int, start: int = 1, last: Event | None = None
) -> AsyncGenerator[Event, None]:
    """SRC's events `start..upto` of a session, read a page at a time as they are taken
    (fewer if SRC has fewer: a replica that lags); `last`: SRC's event before `start`."""
    while start <= upto:
        page = await src.replay(session.id, from_seq=start, to_seq=min(start + _READ - 1, upto))
        # Each page is a read of its own: a page read once the session was deleted and
        # made again (another session imported under its id) is another session's. An
        # import keeps the creation time of its export, so the page before's last event
        # is read again too.
        await check_same_session(src.get_session, session)
        if last is not None:
            await check_same_event(replay_reader(src.replay, session.id), session.id, last)
        if not page:
            return
        for event in page:
            yield event
        start = page[-1].sequence_number + 1
        last = page[-1]


async def _same_ids(src: Store, dst: Store, session_id: str, count: int) -> bool:
    """Whether events 1..`count` of the session have the same ids in SRC and DST, compared a
    page at a time (a session of any size is never held whole, not even its ids)."""
    start = 1
    while start <= count:
        stop = min(start + _READ - 1, count)
        theirs = [e.id for e in await src.replay(session_id, from_seq=start, to_seq=stop)]
        ours = [e.id for e in await dst.replay(session_id, from_seq=start, to_seq=stop)]
        if theirs != ours:
            return False
        start = stop + 1
    return True


async def _marks(src: Store, session: Session) -> tuple[Mapping[int, int] | None, int]:
    """SRC's batch marks of the session, and the last event to copy with them.

    How append_many batched the events (file: the lines' batch_end); kept, the lines come
    out the same, byte for byte. Read only for a session to copy (a skipped one's log is
    not read for them), after `session` and before the events: the events are read up to
    the last one the marks can tell about, as a batch appended after the marks were read
    would be copied unmarked, for good (a later copy finds the session complete); the next
    copy brings it. None: SRC keeps no batch bounds. Held in a compact form (runs, not an
    entry per event) for as long as the session is copied.
    """
    marks, last = compact_marks(await src.backend.batch_marks(session.id))
    # A marked event's batch ends at the next event or later: with honest marks, at the
    # event after the last marked one (batches are written whole).
    return marks, max(session.event_count, last + 1 if last else 0)


async def _bring_details(dst: Store, session: Session, there: Session) -> bool:
    """Give DST's copy SRC's name, labels and budget if they changed since; tell if any did."""
    changes: dict[str, Any] = {
        key: value
        for key, value, old in (
            ("name", session.name, there.name),
            ("labels", session.labels, there.labels),
            ("budget", session.budget, there.budget),
        )
        if value != old
    }
    if changes:
        await dst.update_session(session.id, **changes)
    return bool(changes)


async def _batches(
    events: AsyncIterator[Event], marks: Mapping[int, int] | None
) -> AsyncIterator[list[Event]]:
    """Split `events` into the batches they were appended in (a mark: not a batch's last);
    without marks (None), into pages of `_READ`: a page an append, not one append of all
    the session gained (held whole, and past a server's message limit)."""
    batch: list[Event] = []
    async for event in events:
        batch.append(event)
        ends = (event.sequence_number not in marks) if marks is not None else len(batch) == _READ
        if ends:
            yield batch
            batch = []
    if batch:
        yield batch


def copy(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(metavar="SRC", help="Source: a data directory or URL.")],
    dst: Annotated[str, typer.Argument(metavar="DST", help="Target: a data directory or URL.")],
    session: Annotated[
        list[str] | None,
        typer.Option(
            "--session",
            "-s",
            metavar="ID",
            help="Copy only this session: an id, id prefix, name or latest (repeatable).",
        ),
    ] = None,
) -> None:
    """Copy sessions from SRC to DST, keeping ids, sequence numbers and timestamps.

    SRC and DST are data directories or store URLs (postgresql://...). Sessions already
    in DST are skipped, so an interrupted copy resumes where it stopped. A session that
    cannot be copied (SRC cannot read it, DST refuses it) is named on stderr and the others
    are copied; the copy then exits 1: repair or delete it, and run the copy again.

    \b
    Examples:
      agentstore copy ./agent-data postgresql://app@db/agents
      agentstore copy postgresql://app@db/agents ./backup --session 3f2a
    """
    _no_store_flags(ctx)
    _check_target("SRC", src)
    _check_target("DST", dst)

    async def main() -> None:
        console = Console(stderr=True)
        counts = dict.fromkeys(("copied", "extended", "updated", "skipped", "events", "failed"), 0)
        async with agentstore.open(src, read_only=True) as source:
            # DST is opened once SRC has named the sessions: opening a data directory
            # creates it, and a copy that fails before it writes leaves nothing behind.
            ids = await _session_ids(source, session)
            async with agentstore.open(dst) as target:
                await _copy_all(source, target, ids, console, counts)
        updated = f"updated {counts['updated']}, " if counts["updated"] else ""
        typer.echo(
            f"copied {counts['copied']} sessions, extended {counts['extended']}, {updated}"
            f"skipped {counts['skipped']} already there ({counts['events']} events written)"
        )
        failed = counts["failed"]
        if failed:
            were, them = ("was", "it") if failed == 1 else ("were", "them")
            raise CliError(
                f"{failed} of {len(ids)} sessions {were} not copied (see above): repair or "
                f"delete {them}, then run the copy again"
            )

    run(main)


def _no_store_flags(ctx: typer.Context) -> None:
    """Refuse the global store flags given with copy: it names both stores itself, and a
    flag silently ignored (a --read-store thought to spare SRC's primary) misleads."""
    root = ctx.find_root()
    for name, flag in (
        ("data_dir", "--data-dir"),
        ("store", "--store"),
        ("read_store", "--read-store"),
    ):
        if getattr(root.get_parameter_source(name), "name", "") == "COMMANDLINE":
            raise UsageError(
                f"{flag} does not apply to copy, which names its stores as SRC and DST "
                "(a replica to read from: give its URL as SRC)"
            )


async def _copy_all(
    source: Store, target: Store, ids: list[str], console: Console, counts: dict[str, int]
) -> None:
    """Copy the sessions `ids` with a progress bar, counting what happened in `counts`."""
    columns = (
        TextColumn("copying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sessions"),
        TimeElapsedColumn(),
    )
    # Only on a terminal: elsewhere (a script, a cron job) the bar is not drawn, and
    # Rich would still end it with an empty line on stderr.
    bar = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
    with bar as progress:
        task = progress.add_task("copy", total=len(ids))
        for sid in ids:
            try:
                await _copy_counted(source, target, sid, counts)
            except _STORE_GONE:
                raise  # not this session's doing: the next one would fail the same way
            except (AgentStoreError, CliError) as exc:
                # This session's own trouble (a corrupt log, a payload DST refuses, another
                # session under its id): say so, and copy the others.
                counts["failed"] += 1
                reason = exc.message if isinstance(exc, CliError) else str(exc)
                line = Text(f"session {clean(sid)} not copied: ", style="bold red")
                progress.console.print(line.append(clean(reason)), soft_wrap=True)
            progress.advance(task)


async def _copy_counted(source: Store, target: Store, sid: str, counts: dict[str, int]) -> None:
    for attempt in range(_RACES):
        try:
            found = await source.get_session(sid)
        except SessionNotFoundError:
            return  # deleted in SRC since it was listed (or as it was read): nothing to copy
        try:
            what, n = await _copy_one(source, target, found)
            break
        except (SessionExistsError, SessionNotFoundError):
            # The session changed as it was copied: created in DST meanwhile (another copy
            # of this SRC running at once, a cron job overlapping a manual run), or deleted
            # in SRC (or made again there). Look again: the same session is found whole
            # (or resumed), one deleted is left, another one under this id is refused.
            if attempt == _RACES - 1:
                raise
    counts[what] += 1
    counts["events"] += n

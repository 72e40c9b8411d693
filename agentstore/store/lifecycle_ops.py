"""Fork, import and prune: whole-session operations over the backend contract.

Each builds on two duties of the backend: creating a session together with its first
events as one atomic step (so a fork or an import killed midway leaves nothing behind),
and deleting a session only if it has not changed (so prune never deletes a session that
received appends after it was chosen).
"""

from __future__ import annotations

import contextlib
import inspect
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from agentstore.backends.base import Backend, EventFilter, PendingEvent, SessionQuery
from agentstore.backends.idset import CheckedPage, IdNumbers
from agentstore.backends.types import check_batch_marks
from agentstore.errors import ConcurrencyError, InvalidInputError, SessionNotFoundError
from agentstore.events import Event
from agentstore.session import PrunedSession, Session, validate_session_id
from agentstore.state import Budget
from agentstore.store.validate import aware, check_labels, check_text, pending_from_stored

__all__ = [
    "backend_reader",
    "check_not_spent",
    "check_same_event",
    "check_same_session",
    "fork_pages",
    "import_pages",
    "import_session_of",
    "prune_sessions",
    "replay_reader",
]

_FORK_NAMESPACE = uuid.UUID("6f1c2d4e-8a4b-4d59-9a63-2f3c1b7e5a10")
_PAGE = 1000


async def fork_pages(
    backend: Backend, source: Session, new_id: str, at_seq: int
) -> AsyncIterator[list[PendingEvent]]:
    """The first `at_seq` events of a session, a page at a time, re-identified for `new_id`.

    Fork ids are derived from the source's (uuid5), so forking is reproducible and a
    fork's events never collide with its source's. Raises `SessionNotFoundError` if the
    source is not the session `source` by the last page (see `check_same_session`).
    """
    start = 1
    last: Event | None = None  # of the page before
    while start <= at_seq:
        stop = min(start + _PAGE - 1, at_seq)
        page = await backend.read(source.id, EventFilter(from_seq=start, to_seq=stop))
        if last is not None:
            await check_same_event(backend_reader(backend, source.id), source.id, last)
        yield [
            pending_from_stored(
                event, event_id=str(uuid.uuid5(_FORK_NAMESPACE, f"{new_id}/{event.id}"))
            )
            for event in page
        ]
        start = stop + 1
        last = page[-1] if page else last
    await check_same_session(backend.get_session, source)
    if last is not None and at_seq > _PAGE:  # one page is one read: nothing to join
        await check_same_event(backend_reader(backend, source.id), source.id, last)


async def check_same_session(get: Callable[[str], Awaitable[Session]], session: Session) -> None:
    """Raise `SessionNotFoundError` unless `get(session.id)` is still `session` (the same
    creation time: the same session, not another made under its id since).

    The pages of a session are read one by one, not at one moment: one deleted and made
    again meanwhile (an import of another session under its id) gives the later pages of
    the other. Checked after the last page, the fork or copy of them is refused, whole.
    """
    if (await get(session.id)).created_at != session.created_at:
        raise SessionNotFoundError(session.id)


async def check_same_event(
    read: Callable[[int], Awaitable[list[Event]]], session_id: str, last: Event
) -> None:
    """Raise `SessionNotFoundError` unless `read(seq)` (the session's events from `seq` to
    `seq`) gives `last` again.

    An import keeps the creation time of its export, so a session deleted and imported
    again under its id passes `check_same_session`; its events differ (or end sooner),
    and a read or copy of several pages would join the two histories. The last event of
    the page before, read again, tells them apart (ids are unique per session).
    """
    if await read(last.sequence_number) != [last]:
        raise SessionNotFoundError(session_id)


def backend_reader(backend: Backend, session_id: str) -> Callable[[int], Awaitable[list[Event]]]:
    """`read` for `check_same_event`: the backend's events of a session at one number."""

    def read(seq: int) -> Awaitable[list[Event]]:
        return backend.read(session_id, EventFilter(from_seq=seq, to_seq=seq))

    return read


def replay_reader(
    replay: Callable[..., Awaitable[list[Event]]], session_id: str
) -> Callable[[int], Awaitable[list[Event]]]:
    """`read` for `check_same_event` through a store's `replay` (`Store.replay`)."""

    def read(seq: int) -> Awaitable[list[Event]]:
        return replay(session_id, from_seq=seq, to_seq=seq)

    return read


def import_session_of(session: Session | Mapping[str, Any]) -> Session:
    """Check an exported session and return it as a new, empty session to create.

    A `Session` (and a `Budget` in it) is checked again from its fields: pydantic takes a
    model instance as it is, and its fields can be changed past validation (its labels
    dict, an assigned budget, `model_construct`). A session file written with a bad one
    could not be read back, and the import left it behind.
    """
    if not isinstance(session, Session | Mapping):
        raise InvalidInputError(f"not a valid session: a {type(session).__name__}")
    fields = dict(session.__dict__) if isinstance(session, Session) else dict(session)
    if isinstance(session, Session) and session.__pydantic_extra__:
        fields.update(session.__pydantic_extra__)
    budget = fields.get("budget")
    if isinstance(budget, Budget):
        fields["budget"] = dict(budget.__dict__)
    try:
        target = Session.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInputError(f"not a valid session: {exc}") from exc
    validate_session_id(target.id)
    for what, text in (("name", target.name), ("parent_id", target.parent_id)):
        if text is not None:
            check_text(what, text)
    check_labels(target.labels)
    if target.__pydantic_extra__:
        try:
            orjson.dumps(target.__pydantic_extra__)
        except TypeError as exc:
            raise InvalidInputError(f"not a valid session: {exc}") from None
    return target.model_copy(update={"event_count": 0, "updated_at": target.created_at})


def check_not_spent(events: object) -> None:
    """Refuse a generator that has run to its end (or failed) as an import's events.

    It yields nothing more, and would import as an empty session: the mistake of an import
    retried with the generator its failed first try consumed.
    """
    if inspect.isasyncgen(events):
        spent = events.ag_frame is None
    elif inspect.isgenerator(events):
        spent = inspect.getgeneratorstate(events) == inspect.GEN_CLOSED
    else:
        return  # a list (read again from the start) or an iterator that cannot tell
    if spent:
        raise InvalidInputError(
            "the events are a generator that has already run to its end (or failed): "
            "pass a new one (a retried import reads the export again)"
        )


async def import_pages(
    sid: str,
    events: Iterable[Event] | AsyncIterable[Event],
    batch_marks: Mapping[int, int] | None = None,
) -> AsyncIterator[list[PendingEvent]]:
    """Check an export's events (1..N, in time order, of this session), a page at a time.

    `events` may be asynchronous (another store's events read as they are written: a copy
    never holds a whole session), and each id may appear once. With `batch_marks`
    (`Backend.batch_marks` of the store copied from), each event keeps its batch mark; the
    marks must tell whole batches of these events. A bad event or mark raises before its
    page is written; the backend then creates nothing.
    """
    marks = _BatchMarks(batch_marks)
    previous: datetime | None = None
    # Checked pages: the backend need not remember their ids again to skip a repeat.
    page = CheckedPage()
    expected = 0
    # Every id so far, to refuse a repeat: a digest of each, not the strings (a copy of tens
    # of millions of events held GBs of them).
    ids = IdNumbers()
    async with contextlib.aclosing(_each(events)) as each:
        async for event in each:
            expected += 1
            where = f"event {expected} of the import"
            if not isinstance(event, Event):
                raise InvalidInputError(f"{where} is a {type(event).__name__}, not an Event")
            if event.sequence_number != expected:
                raise InvalidInputError(
                    f"{where} has sequence number {event.sequence_number}: "
                    "events must be numbered 1..N in order"
                )
            if event.session_id not in ("", sid):
                raise InvalidInputError(f"{where} belongs to session {event.session_id!r}")
            first = ids.setdefault(event.id, expected)
            if first != expected:
                # An append skips a repeated id; here that would renumber every event after
                # it, and an import keeps the numbers it is given.
                raise InvalidInputError(f"{where} repeats the id of event {first}")
            ts = aware("timestamp", event.timestamp)
            if ts is None or (previous is not None and ts < previous):
                raise InvalidInputError(f"{where} has no timestamp or goes back in time")
            previous = ts
            pending = pending_from_stored(event)
            marks.take(pending, expected)
            page.append(pending)
            if len(page) == _PAGE:
                yield page
                page = CheckedPage()
    marks.finish()
    if page:
        yield page


async def _each(events: Iterable[Event] | AsyncIterable[Event]) -> AsyncGenerator[Event, None]:
    if isinstance(events, AsyncIterable):
        async for event in events:
            yield event
    else:
        for event in events:
            yield event


class _BatchMarks:
    """The batch marks of an import, checked as its events go by (`check_batch_marks`, on
    the numbers the export gives), and none left over beyond its events."""

    def __init__(self, marks: Mapping[int, int] | None) -> None:
        # Read where they are, not copied: a copy's marks have an entry per event of a
        # batch (`agentstore copy` passes them in a compact form of their own).
        self._marks: Mapping[int, int] = marks if isinstance(marks, Mapping) else dict(marks or {})
        self._end: int | None = None  # the end of the batch the events are in
        self._taken = 0  # events 1.._taken went by

    def take(self, pending: PendingEvent, seq: int) -> None:
        mark = pending.batch_end = self._marks.get(seq)
        if mark is not None and (type(mark) is not int or mark <= seq):
            # A mark's own fault first, wherever it stands (inside a batch too).
            raise InvalidInputError(f"batch mark of event {seq}: {mark!r} is not a later event")
        self._end = check_batch_marks(((pending, seq, _NO_TIME),), self._end)
        self._taken = seq

    def finish(self) -> None:
        if self._end is not None:
            raise InvalidInputError(f"a batch mark names event {self._end}, beyond the import")
        taken = self._taken
        beyond = [seq for seq in self._marks if not (type(seq) is int and 0 < seq <= taken)]
        if beyond:
            first = sorted(beyond, key=lambda k: (0, k, "") if type(k) is int else (1, 0, repr(k)))
            raise InvalidInputError(f"batch marks of events beyond the import: {first[:5]}")


_NO_TIME = datetime.min  # check_batch_marks reads no time


async def prune_sessions(
    backend: Backend,
    delete: Any,
    *,
    older_than: timedelta,
    labels: Mapping[str, str] | None,
    dry_run: bool,
    now: datetime | None,
) -> list[PrunedSession]:
    """Delete (or list, with `dry_run`) sessions whose last activity is before the cutoff.

    `delete(session_id, expected_seq)` deletes one session only if its last sequence
    number is still the one seen when it was chosen; a session that changed meanwhile
    (`ConcurrencyError`) or is gone is skipped.
    """
    if not isinstance(older_than, timedelta) or older_than < timedelta(0):
        raise InvalidInputError("older_than must be a timedelta >= 0")
    cutoff = (aware("now", now) or datetime.now(UTC)) - older_than
    clean = check_labels(labels) or None
    doomed: list[Session] = []
    cursor: str | None = None
    while True:
        page = await backend.list_sessions(SessionQuery(limit=_PAGE, cursor=cursor, labels=clean))
        doomed.extend(s for s in page.sessions if s.updated_at < cutoff)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    pruned: list[PrunedSession] = []
    for chosen in doomed:
        try:
            # Chosen from a listing: read it again, and keep it if it no longer qualifies
            # (relabelled, or appended to since).
            session = await backend.get_session(chosen.id)
            if session.updated_at >= cutoff or (
                clean and any(session.labels.get(k) != v for k, v in clean.items())
            ):
                continue
            size = await backend.storage_size(session.id)
            if not dry_run:
                await delete(session.id, session.event_count)
        except (SessionNotFoundError, ConcurrencyError):
            continue  # deleted meanwhile, or appended to since it was read: keep it
        pruned.append(PrunedSession(session=session, bytes=size or 0))
    return pruned

"""The values that cross the storage seam: what a backend receives and returns.

Re-exported by `agentstore.backends.base`, where backend authors find them next to the
`Backend` contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from agentstore.errors import ConcurrencyError, InvalidInputError
from agentstore.events import Event, Metadata, build_event
from agentstore.session import Session

if TYPE_CHECKING:
    from agentstore.state import Budget

__all__ = [
    "UNSET",
    "AppendResult",
    "EventFilter",
    "PendingEvent",
    "PlannedAppend",
    "SessionChanges",
    "SessionPage",
    "SessionQuery",
    "SkippedSession",
    "SnapshotRecord",
    "before_cursor",
    "check_batch_marks",
    "parse_session_cursor",
    "plan_append",
    "session_cursor",
]


class _Unset:
    """The type of `UNSET`: "leave this field as it is" in `SessionChanges`."""

    _instance: ClassVar[_Unset | None] = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()
"""A field of `SessionChanges` left as it is."""


@dataclass(slots=True)
class PendingEvent:
    """A validated, encoded event on its way into a log.

    `payload_json` and `metadata_json` are the exact bytes to store (a backend that keeps
    JSON text stores them as they are, so a replay returns exactly what was appended);
    `payload` and `metadata` are the same values as objects, for building the result.
    """

    id: str
    type: str
    payload: Any
    payload_json: bytes
    metadata: Metadata
    metadata_json: bytes
    timestamp: datetime | None = None
    """Keep this timestamp (import, fork, copy) instead of the time of the append."""
    batch_end: int | None = None
    """Keep this batch mark (an import that copies a session, see `Backend.batch_marks`):
    the last sequence number of the `append_many` batch this event was written in, for
    every event of a batch but its last. An append ignores it (it marks its own batch)."""


@dataclass(slots=True)
class AppendResult:
    """What an append did: the stored events (one per pending event, in order)."""

    events: list[Event]
    """The stored event for each pending event; a duplicate id gives the earlier event."""
    written: int
    """How many events were new and written (the rest were duplicates)."""
    previous_seq: int
    """The session's last sequence number before the append."""
    session_created_at: datetime | None = None
    """When the session appended to was created: which session of that id it was (one
    deleted and created again elsewhere is another). None: the backend does not say."""

    @property
    def last_seq(self) -> int:
        """The session's last sequence number right after the append (its new events are
        `previous_seq + 1` to this)."""
        return self.previous_seq + self.written


@dataclass(slots=True, frozen=True)
class EventFilter:
    """Which events a read returns. Every bound is inclusive."""

    from_seq: int = 1
    to_seq: int | None = None
    types: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None

    def matches(self, event: Event) -> bool:
        """Tell whether `event` passes the type and time filters (not the seq bounds)."""
        if self.types is not None and event.type not in self.types:
            return False
        ts = event.timestamp
        if self.since is not None and ts is not None and ts < self.since:
            return False
        return not (self.until is not None and ts is not None and ts > self.until)


@dataclass(slots=True)
class SnapshotRecord:
    """A saved state of a session at `version`, and the reducer that made it.

    Snapshots are a cache: the log is the truth. A backend keeps one snapshot per
    (session, reducer), so stores with different reducers never overwrite each other's.
    """

    session_id: str
    version: int
    state: dict[str, Any]
    reducer: str | None
    """The reducer's fingerprint (`agentstore.state.reducer_fingerprint`); None: unknown."""
    created_at: datetime


@dataclass(slots=True, frozen=True)
class SessionQuery:
    """Which sessions a listing returns: newest first, `limit` of them after `cursor`."""

    limit: int = 100
    cursor: str | None = None
    """Opaque: the `next_cursor` of the previous page (None: from the newest)."""
    labels: dict[str, str] | None = None
    """Only sessions that have every one of these labels."""


@dataclass(slots=True, frozen=True)
class SkippedSession:
    """A session a listing passed over: its stored record could not be read.

    One bad session never hides the others, so a listing goes on without it and says so
    here. `agentstore verify` finds what is wrong and where.
    """

    session_id: str
    """The session's id, as its storage names it (a file backend: from the file name)."""
    reason: str
    """What is wrong, in one line. Files are named relative to the data directory
    (`sessions/ID.json`): the same text locally and through a server, which tells its
    clients nothing of its own file system."""

    def __str__(self) -> str:
        return f"{self.session_id}: {self.reason}"


@dataclass(slots=True)
class SessionPage:
    """One page of a session listing."""

    sessions: list[Session]
    next_cursor: str | None
    """Pass it as `SessionQuery.cursor` for the next page; None when this was the last."""
    skipped: list[SkippedSession] = field(default_factory=list)
    """The sessions this page's listing passed over because they could not be read (each
    once). A session whose place in the order is not known (a file the listing could not
    read at all) is named on every page; a backend that cannot fail this way leaves it
    empty."""


@dataclass(slots=True, frozen=True)
class SessionChanges:
    """What `update_session` changes; a field left `UNSET` is kept as it is."""

    name: str | None = UNSET
    labels: dict[str, str] = UNSET
    """The new labels, replacing the old ones whole."""
    budget: Budget | None = UNSET


def session_cursor(session: Session) -> str:
    """Return the listing cursor just after `session` (newest-first order).

    Sessions are ordered by (`created_at`, `id`), both descending; every built-in backend
    uses this one encoding, so a cursor means the same thing on all of them.
    """
    return f"{session.created_at.isoformat()}|{session.id}"


def parse_session_cursor(cursor: str) -> tuple[datetime, str]:
    """Split a cursor from `session_cursor`; raise `InvalidInputError` if it is not one."""
    created, sep, sid = cursor.partition("|")
    try:
        if not sep or not sid:
            raise ValueError(cursor)
        ts = datetime.fromisoformat(created)
    except ValueError as exc:
        raise InvalidInputError(f"not a session listing cursor: {cursor!r}") from exc
    if ts.tzinfo is None:
        raise InvalidInputError(f"not a session listing cursor: {cursor!r}")
    return ts, sid


def before_cursor(session: Session, cursor: tuple[datetime, str] | None) -> bool:
    """Tell whether `session` comes after `cursor` in newest-first order."""
    if cursor is None:
        return True
    return (session.created_at, session.id) < cursor


@dataclass(slots=True)
class PlannedAppend:
    """What a batch becomes, worked out before anything is written."""

    events: list[Event | None]
    """The stored event per pending event; None where it duplicates an earlier event."""
    new: list[tuple[PendingEvent, int, datetime]] = field(default_factory=list)
    """Each new event with its sequence number and timestamp, in order (to encode)."""
    duplicates: dict[int, int] = field(default_factory=dict)
    """Index in the batch -> sequence number of the stored event with the same id."""
    new_ids: dict[str, int] = field(default_factory=dict)
    """Ids of the new events -> their sequence numbers."""
    last_seq: int = 0
    last_ts: datetime | None = None


def plan_append(
    session_id: str,
    batch: Sequence[PendingEvent],
    *,
    last_seq: int,
    last_ts: datetime | None,
    known_ids: dict[str, int],
    now: datetime,
    expected_seq: int | None = None,
) -> PlannedAppend:
    """Apply `Backend.append`'s rules 2 to 5 to a batch, for a backend holding the tail.

    Raises `ConcurrencyError` when the batch has new events and `expected_seq` is not
    `last_seq` (a batch of only already-stored ids succeeds whatever `expected_seq` says).
    """
    events: list[Event | None] = []
    new: list[tuple[PendingEvent, int, datetime]] = []
    duplicates: dict[int, int] = {}
    new_ids: dict[str, int] = {}
    seq = last_seq
    for index, pending in enumerate(batch):
        earlier = known_ids.get(pending.id)
        if earlier is None:
            earlier = new_ids.get(pending.id)
        if earlier is not None:
            duplicates[index] = earlier
            events.append(None)
            continue
        seq += 1
        ts = pending.timestamp or now
        if last_ts is not None and ts < last_ts:
            ts = last_ts
        last_ts = ts
        new.append((pending, seq, ts))
        events.append(
            build_event(
                pending.id, session_id, seq, pending.type, pending.payload, ts, pending.metadata
            )
        )
        new_ids[pending.id] = seq
    if new and expected_seq is not None and expected_seq != last_seq:
        raise ConcurrencyError(session_id, expected_seq, last_seq)
    return PlannedAppend(events, new, duplicates, new_ids, seq, last_ts)


def check_batch_marks(
    new: Sequence[tuple[PendingEvent, int, datetime]], open_end: int | None = None
) -> int | None:
    """Check the batch marks a new session's events bring against the numbers they got.

    `new` is a `PlannedAppend.new` (a duplicate id skipped renumbers what follows it);
    every event of a batch but its last must name the batch's last sequence number
    (`PendingEvent.batch_end`), the last none. Returns the end of a batch still open after
    `new` (None: none), for the next page; a session left with one open must not be
    created: its last line would be marked, and a data directory's recovery would cut the
    batch as a torn tail. Raises `InvalidInputError` before anything is written.
    """
    for pending, seq, _ in new:
        mark = pending.batch_end
        if open_end is None:
            if mark is not None and (type(mark) is not int or mark <= seq):
                raise InvalidInputError(f"batch mark of event {seq}: {mark!r} is not a later event")
            open_end = mark
        elif seq < open_end:
            if mark != open_end:
                raise InvalidInputError(
                    f"batch mark of event {seq}: {mark!r}, its batch ends at {open_end}"
                )
        else:
            if mark is not None:
                raise InvalidInputError(f"event {seq} ends a batch and is marked {mark!r}")
            open_end = None
    return open_end

"""The storage contract: what every backend (memory, file, PostgreSQL, remote) implements.

Who does what at the seam:

- The **backend** owns everything that must hold when several stores, processes or hosts
  share one storage: sequence numbers 1..N with no gap or repeat, atomic batches,
  `expected_seq`, idempotent event ids, non-decreasing timestamps, cross-process locking,
  durability, change notification (`wait_for_append`), creating a session together with its
  first events in one step, snapshots keyed by (session, reducer), physical verification and
  repair, and the size a session takes in storage.
- The **Store** owns validation and encoding (a backend receives `PendingEvent`s whose payload
  and metadata are already checked and encoded as JSON bytes), pricing, reducers and the state
  cache, the snapshot policy, budgets and the stream API.

A backend is written once against this module and tested with the installable conformance
contract, `agentstore.testing.conformance`, exactly as the built-in ones are. A minimal
backend implements the abstract methods; the others have working defaults that a backend
overrides when it can do better (one query instead of two, a push instead of polling).

Capabilities are declared on the class (`read_only`, `shared_across_processes`), never
probed with `getattr`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from agentstore.errors import ConcurrencyError, InvalidInputError
from agentstore.events import Event, Metadata, build_event
from agentstore.session import Session

if TYPE_CHECKING:
    from agentstore.state import Budget
    from agentstore.verify import VerifyReport

__all__ = [
    "UNSET",
    "AppendResult",
    "Backend",
    "EventFilter",
    "PendingEvent",
    "PlannedAppend",
    "SessionChanges",
    "SessionPage",
    "SessionQuery",
    "SnapshotRecord",
    "before_cursor",
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


@dataclass(slots=True)
class AppendResult:
    """What an append did: the stored events (one per pending event, in order)."""

    events: list[Event]
    """The stored event for each pending event; a duplicate id gives the earlier event."""
    written: int
    """How many events were new and written (the rest were duplicates)."""
    previous_seq: int
    """The session's last sequence number before the append."""


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


@dataclass(slots=True)
class SessionPage:
    """One page of a session listing."""

    sessions: list[Session]
    next_cursor: str | None
    """Pass it as `SessionQuery.cursor` for the next page; None when this was the last."""


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


class Backend(ABC):
    """Storage for sessions, their event logs and their snapshots.

    Every method may be called concurrently from several tasks of one event loop and, for a
    backend with `shared_across_processes`, by other processes or hosts at the same time:
    the rules below must hold whatever interleaves. Errors are `agentstore.errors` classes:
    `SessionNotFoundError` for an unknown session, `ConcurrencyError` for a lost
    `expected_seq`, `StorageUnavailableError` when storage cannot be reached (a retry of the
    same events is safe), `StorageError` for the rest.

    ```python
    class MyBackend(Backend):
        async def append(self, session_id, batch, expected_seq):
            ...  # see the docstring below: the hardest duty of a backend

    store = await agentstore.open(MyBackend())
    ```
    """

    read_only: bool = False
    """True when this backend refuses every write (a read-only data directory, a replica)."""

    shared_across_processes: ClassVar[bool] = True
    """Whether other processes or hosts can write the same storage (False for memory)."""

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend for use (create directories, connect, take locks)."""

    @abstractmethod
    async def close(self) -> None:
        """Release every resource; the backend is not used again."""

    # --- sessions -----------------------------------------------------------------------

    @abstractmethod
    async def create_session(
        self, session: Session, events: Sequence[PendingEvent] = ()
    ) -> AppendResult:
        """Store a new session together with its first events, as one atomic step.

        Afterwards either the session exists with every one of `events` (numbered 1..N,
        keeping each event's `timestamp` when it has one), or, after a failure or a crash
        at any point, it does not exist at all: never a session with part of its events.
        Raise `SessionExistsError` if the id is taken. Used with events by fork, import and
        copy; `create_session(session)` makes an empty session.
        """

    @abstractmethod
    async def get_session(self, session_id: str) -> Session:
        """Return a session with `event_count` and `updated_at` read from its log.

        `updated_at` is the later of `created_at` and the last event's timestamp (so a fresh
        fork of an old session counts as active now).
        """

    @abstractmethod
    async def update_session(self, session_id: str, changes: SessionChanges) -> Session:
        """Change a session's name, labels or budget; return the session as it now is."""

    @abstractmethod
    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        """Return a page of sessions, newest first, filtered by labels before paging.

        Order by (`created_at`, `id`) descending; the cursor of a page is
        `session_cursor(last session)`, so paging never repeats or skips a session that
        exists throughout, even while others are created or deleted.
        """

    @abstractmethod
    async def find_session_ids(self, prefix: str, limit: int) -> list[str]:
        """Return up to `limit` ids that start with `prefix`, sorted (an exact match first)."""

    @abstractmethod
    async def delete_session(self, session_id: str, *, expected_seq: int | None = None) -> None:
        """Remove a session, its log and its snapshots.

        With `expected_seq`, delete only if the session's last sequence number is still
        that, checked under the same lock as appends (else `ConcurrencyError`): `prune`
        uses it so that a session appended to after it was chosen is not deleted.
        """

    async def storage_size(self, session_id: str) -> int | None:
        """Return how many bytes the session takes in storage, or None if unknown."""
        await self.last_seq(session_id)  # still raise for an unknown session
        return None

    # --- events -------------------------------------------------------------------------

    @abstractmethod
    async def last_seq(self, session_id: str) -> int:
        """Return the session's last sequence number (0 if it has no events)."""

    @abstractmethod
    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """Append a batch to a session's log, atomically, and return what was stored.

        The rules, which must hold under any concurrency (tasks, threads, processes):

        1. **All or nothing.** After a failure or a crash, either every new event of the
           batch is in the log or none is.
        2. **Sequence numbers** continue the log: the first new event gets last_seq + 1,
           the next + 2, with no gap or repeat.
        3. **Idempotent ids.** An event whose `id` is already in the session (or earlier
           in the same batch) is not written again; its place in `AppendResult.events` holds
           the stored event. This is checked *before* `expected_seq`, so retrying an
           acknowledged append returns the stored events whatever `expected_seq` it repeats.
        4. **expected_seq**: if given and the batch has new events, they are written only
           if the session's last sequence number is `expected_seq`; otherwise raise
           `ConcurrencyError(session_id, expected_seq, actual)` and write nothing.
        5. **Timestamps** never go backwards: a new event gets its `timestamp` if it has
           one, else now; if that is earlier than the session's last timestamp, the last
           one.
        6. **Durability**: when this returns, the events survive a crash of the process
           (and, for a durable backend, of the machine).

        `plan_append` implements rules 2, 3 and 5 for a backend that holds the session's
        tail in hand; a database can do the same in one statement.
        """

    @abstractmethod
    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        """Return the events that pass `flt`, in sequence order.

        A read never skips what it cannot decode: a damaged stored event in the range it
        covers raises `CorruptLogError` (with where), filtered or not.
        """

    async def wait_for_append(self, session_id: str, after_seq: int) -> int:
        """Wait until the session's last sequence number is above `after_seq`; return it.

        The default polls `last_seq` with back-off (10 ms to 0.5 s). A backend that can be
        told (an in-process event, LISTEN/NOTIFY, a server stream) overrides it and wakes at
        once, including for appends made through another `Store` or process. Raises
        `SessionNotFoundError` if the session is deleted. The caller cancels it to stop.
        """
        delay = 0.01
        while True:
            last = await self.last_seq(session_id)
            if last > after_seq:
                return last
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.5)

    # --- snapshots ----------------------------------------------------------------------

    @abstractmethod
    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Replace the snapshot of (session, reducer), atomically. Ignore a deleted session."""

    @abstractmethod
    async def load_snapshot(self, session_id: str, reducer: str | None) -> SnapshotRecord | None:
        """Return the snapshot `reducer` made of the session, or None.

        None too when it cannot be read: snapshots are a cache, never fatal.
        """

    async def load_session_and_snapshot(
        self, session_id: str, reducer: str | None
    ) -> tuple[Session, SnapshotRecord | None]:
        """Return the session and its snapshot: what a cold `get_state` starts from.

        Backends that can fetch both in one round trip (one thread hop, one query) override
        this.
        """
        return await self.get_session(session_id), await self.load_snapshot(session_id, reducer)

    # --- verification -------------------------------------------------------------------

    async def verify(self, session_id: str | None, *, repair: bool) -> VerifyReport:
        """Check the stored data physically (one session, or all) and report problems.

        The default reads every event through `read` and checks the sequence and
        timestamp rules; a backend with its own storage format overrides it to check
        what only it can see (damaged lines, checksums, torn tails, stray files) and, with
        `repair`, to fix what is safe to fix. The `Store` adds the checks that need its
        reducer (snapshots against a full fold).
        """
        from agentstore.verify import verify_through_reads

        return await verify_through_reads(self, session_id)


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

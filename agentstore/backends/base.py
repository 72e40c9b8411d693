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
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from agentstore.backends.types import (
    UNSET,
    AppendResult,
    EventFilter,
    PendingEvent,
    PlannedAppend,
    SessionChanges,
    SessionPage,
    SessionQuery,
    SkippedSession,
    SnapshotRecord,
    before_cursor,
    parse_session_cursor,
    plan_append,
    session_cursor,
)
from agentstore.events import Event
from agentstore.session import Session

if TYPE_CHECKING:
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
    "SkippedSession",
    "SnapshotRecord",
    "before_cursor",
    "parse_session_cursor",
    "plan_append",
    "session_cursor",
]


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

    appends_never_suspend: ClassVar[bool] = False
    """True when `append` never yields to the event loop (it does no I/O): the store may
    then skip its per-session lock for an append that nothing else is holding it for."""

    appends_complete_in_order: ClassVar[bool] = False
    """True when concurrent appends of this process to one session return to their callers
    in the order of their sequence numbers (the file backend's group commit): the store then
    lets them run at once, without its per-session lock, and folds them in that order."""

    appends_on_caller_thread: ClassVar[bool] = False
    """True when `append_blocking` appends on the calling thread: a `SyncStore` then appends
    there (its caller blocks anyway) instead of through its event loop. A class that defines
    `append_blocking` has it unless it says otherwise; a subclass that overrides `append`
    alone loses it (its own `append` would be bypassed)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "appends_on_caller_thread" not in cls.__dict__:
            if "append_blocking" in cls.__dict__:
                cls.appends_on_caller_thread = True
            elif "append" in cls.__dict__:
                cls.appends_on_caller_thread = False

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

    async def create_session_from_pages(
        self, session: Session, pages: AsyncIterator[Sequence[PendingEvent]]
    ) -> int:
        """`create_session(session, events)` with the events supplied a page at a time.

        Same promise (the whole session or nothing, `SessionExistsError` if taken); returns
        how many events were written. Fork, import and copy use it so that a session of any
        size is never held whole in memory: a backend that can write as it goes (the file
        backend: a temp log renamed into place) overrides it. The default gathers the pages
        and calls `create_session`. If `pages` raises, nothing is created. To skip an id
        already written without a dict of every id, see `agentstore.backends.idset`: an
        import's pages come as `CheckedPage` (their ids need no remembering).
        """
        events = [pending async for page in pages for pending in page]
        return (await self.create_session(session, events)).written

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
        exists throughout, even while others are created or deleted. A session that
        cannot be read is left out and named in `SessionPage.skipped`, so that one bad
        session never hides the others (nor fails the listing).
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

    async def head(self, session_id: str) -> tuple[int, datetime | None]:
        """Return the session's last sequence number and when the session was created.

        The creation time tells a store which session of that id it has cached: one
        deleted and created again through another store is another session, even at the
        same sequence number. The default says None (unknown): override it, and fill
        `AppendResult.session_created_at`, in a backend whose sessions other stores can
        delete and create again behind this one's back.
        """
        return await self.last_seq(session_id), None

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

    def append_blocking(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """`append` on the calling thread, returning once the batch is durable.

        Offered by a backend with `appends_on_caller_thread`: the same rules as `append`,
        callable from many threads at once (ordered with `append` and with other
        processes), and it wakes followers as `append` does. Not called on the event loop's
        thread. The default raises `NotImplementedError`.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot append on the caller's thread")

    async def batch_marks(self, session_id: str) -> Mapping[int, int] | None:
        """Return how the session's events were batched, for a copy to keep it.

        `{sequence number: the last sequence number of its batch}` for every event of an
        `append_many` batch but its last (events appended alone are not in it), as the file
        backend marks its lines (`batch_end`). An import given these marks
        (`PendingEvent.batch_end`) stores them, so a copy writes the same lines. The
        default says None: this backend keeps no batch bounds (a copy from it marks none).
        A backend that keeps them had better give a `MarkRuns` (three numbers a batch) than
        a dict (an entry an event: GBs for a session of tens of millions of events).
        """
        await self.last_seq(session_id)  # still raise for an unknown session
        return None

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

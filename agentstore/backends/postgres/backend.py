"""`PostgresBackend`: the Backend contract on PostgreSQL, wired from the rooms beside it.

```python
store = await agentstore.open("postgresql://app@db.internal/agents?schema=agents")
```

Writes, sessions and snapshots go to the primary (`url`). With `read_url`, `read` and
`list_sessions` go to that replica, except where this backend wrote something the replica
has not replayed yet: those reads go to the primary, so a store always reads its own writes
(what other stores wrote shows up on the replica once it has replayed it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from agentstore.backends.base import (
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SessionChanges,
    SessionPage,
    SessionQuery,
    SnapshotRecord,
)
from agentstore.backends.marks import MarkRuns
from agentstore.backends.postgres._driver import translated
from agentstore.backends.postgres.append import Appender
from agentstore.backends.postgres.imports import Importer
from agentstore.backends.postgres.jsontext import refuse_nul
from agentstore.backends.postgres.notifications import (
    Leases,
    Listener,
    Notifier,
    channel_name,
)
from agentstore.backends.postgres.options import PostgresOptions, parse_url
from agentstore.backends.postgres.pool import Database, connect, create_database
from agentstore.backends.postgres.reads import EventReader
from agentstore.backends.postgres.replica import ReadYourWrites
from agentstore.backends.postgres.schema import (
    check_not_newer,
    current_version,
    migrate,
    schema_version,
)
from agentstore.backends.postgres.sessions import SessionRows
from agentstore.backends.postgres.snapshots import SnapshotRows
from agentstore.errors import (
    SessionNotFoundError,
    StorageError,
    StorageUnavailableError,
    StoreClosedError,
    StoreLockedError,
)
from agentstore.events import Event
from agentstore.session import Session

__all__ = ["PostgresBackend"]

log = logging.getLogger("agentstore.postgres")

# A follower that could not reach the server tries again after this long, doubling.
_RETRY_FIRST = 0.05
_RETRY_LAST = 2.0


class PostgresBackend(Backend):
    """Sessions, events and snapshots in PostgreSQL (or a server that speaks its protocol).

    `url` is a `postgresql://` URL; its query (or keyword arguments) sets the options of
    `PostgresOptions`: `schema`, `pool_min_size`, `pool_max_size`, `connect_timeout`,
    `pool_timeout`, `statement_timeout`, `pgbouncer`, `migrate`, `notify`; a replica is a
    keyword argument only (`read_url`, with options of its own in its URL's query).
    """

    shared_across_processes = True
    # The append statements of a backend leave one at a time (`flights.MAX_FLIGHTS`), and
    # an append's caller runs on to the store's fold before the next one leaves: appends
    # to one session come back in sequence order, so the store folds them without its
    # per-session lock (which cost a single append about 3% of its client instructions).
    # Where an append goes outside the flights (events with timestamps of their own, a
    # retry resolved by a lookup, a batch naming an id twice, one gone alone after a
    # shared statement failed) two appends to one session may come back the other way;
    # the store's fold then finds its cached state elsewhere than the append's
    # `previous_seq` and drops it (rebuilt from the log), as for an append of another
    # process. Budgeted appends keep the lock.
    appends_complete_in_order = True

    def __init__(self, url: str, **options: Any) -> None:
        self.options: PostgresOptions = parse_url(url, **options)
        schema = self.options.schema
        self._snapshots = SnapshotRows(schema)
        self._appender = Appender(schema, self._snapshots)
        self._importer = Importer(schema)
        # An import holds a connection for its whole transaction while its pages may be
        # read from this pool (a fork reads its source as it goes): as many imports as
        # connections would each wait for a read none can get, until pool_timeout. One
        # connection is left to the others; with one in all, imports gather first.
        self._imports = asyncio.Semaphore(max(self.options.pool_max_size - 1, 1))
        self._sessions = SessionRows(schema)
        self._reader = EventReader(schema)
        self._channel = channel_name(schema)
        self._db: Database | None = None
        self._replica: Database | None = None
        self._notifier: Notifier | None = None
        self._listener: Listener | None = None
        self._leases = Leases(schema)
        self._ryw = ReadYourWrites(schema)
        self._standby = False

    def __repr__(self) -> str:
        return f"PostgresBackend({self.options.display!r}, schema={self.options.schema!r})"

    @property
    def shared_flights(self) -> int:
        """Append statements so far that carried concurrent appends to several sessions
        (see `agentstore.backends.postgres.flights`)."""
        return self._appender.shared_flights

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, check the schema version and create or upgrade the schema if allowed."""
        opts = self.options
        db = await create_database(opts)
        try:
            await self._check_schema(db)
            if opts.read_url is not None:
                self._replica = await create_database(opts.read_options or opts, opts.read_url)
        except BaseException:
            await db.close()
            raise
        self._db = db
        if opts.notify and not self.read_only:
            self._notifier = Notifier(lambda: connect(opts), self._channel)
        self._listener = Listener(lambda: connect(opts), self._channel)

    async def _check_schema(self, db: Database) -> None:
        opts = self.options
        where = opts.display
        async with translated(f"opening {where}"), db.acquire() as conn:
            standby = await conn.fetchval("SELECT pg_is_in_recovery()")
            self._standby = bool(standby)
            found = await schema_version(conn, opts.schema)
            check_not_newer(found, opts.schema, where)
            if standby or self.read_only:
                # A hot standby serves reads only; writes get a clear error up front.
                self.read_only = True
                if found < current_version():
                    raise StorageError(
                        f"{where} is opened read-only (or is a replica) and schema "
                        f"{opts.schema!r} is at version {found}, not {current_version()}: "
                        "run `agentstore migrate --store URL` on the primary first"
                    )
                return
            if found < current_version():
                if not opts.migrate:
                    raise StorageError(
                        f"{where}: schema {opts.schema!r} is at version {found}, this "
                        f"agentstore needs {current_version()}: run "
                        "`agentstore migrate --store URL` (or open without migrate=false)"
                    )
                await migrate(conn, opts.schema, where)

    async def close(self) -> None:
        """Write waiting snapshots, flush pending notifications, stop listening and close
        every connection."""
        if self._db is not None:
            await self._snapshots.close()
        if self._notifier is not None:
            await self._notifier.close()
        if self._listener is not None:
            await self._listener.close()
        for db in (self._db, self._replica):
            if db is not None:
                await db.close()
        self._db = self._replica = None

    @property
    def db(self) -> Database:
        """The primary's pool (raise `StoreClosedError` when not open)."""
        if self._db is None:
            raise StoreClosedError("the PostgreSQL backend is not open")
        return self._db

    def _writable(self) -> Database:
        if self.read_only:
            raise StoreLockedError(
                f"{self.options.display} is opened read-only or is a read-only replica "
                "(hot standby): open the primary to write, and pass a replica as read_url"
            )
        return self.db

    def _notify(self, session_id: str, last_seq: int) -> None:
        if self._notifier is not None:
            self._notifier.record(session_id, last_seq)

    # --- sessions -----------------------------------------------------------------------

    async def create_session(
        self, session: Session, events: Sequence[PendingEvent] = ()
    ) -> AppendResult:
        refuse_nul(events, f"creating session {session.id!r}")
        result = await self._appender.create(self._writable(), session, events, datetime.now(UTC))
        # A session row that did not exist holds no follower lease: nobody to notify.
        self._ryw.wrote(session.id, result.written, session)
        return result

    async def create_session_from_pages(
        self, session: Session, pages: AsyncIterator[Sequence[PendingEvent]]
    ) -> int:
        """The session and its events in one transaction, a page at a time (`imports.py`)."""
        if self.options.pool_max_size < 2:
            # The pages may come from this pool (a fork reads its source as it goes): with
            # one connection, held by the transaction, they would wait for it for good.
            return await super().create_session_from_pages(session, pages)
        async with self._imports:
            pool = self._writable()
            written = await self._importer.create(pool, session, pages, datetime.now(UTC))
        self._ryw.wrote(session.id, written, session)
        return written

    async def get_session(self, session_id: str) -> Session:
        return await self._sessions.get(self.db, session_id)

    async def update_session(self, session_id: str, changes: SessionChanges) -> Session:
        session = await self._sessions.update(self._writable(), session_id, changes)
        self._ryw.wrote(session_id, session.event_count, session)
        return session

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        replica = self._replica
        if replica is not None and await self._ryw.replica_has_all(replica):
            try:
                return await self._sessions.page(replica, query)
            except StorageUnavailableError:
                pass  # the replica is down: the primary answers
        return await self._sessions.page(self.db, query)

    async def find_session_ids(self, prefix: str, limit: int) -> list[str]:
        return await self._sessions.find_ids(self.db, prefix, limit)

    async def delete_session(self, session_id: str, *, expected_seq: int | None = None) -> None:
        await self._snapshots.forget(session_id)
        await self._sessions.delete(self._writable(), session_id, expected_seq)
        self._ryw.deleted(session_id)
        self._notify(session_id, -1)

    async def storage_size(self, session_id: str) -> int | None:
        return await self._sessions.size(self.db, session_id)

    # --- events -------------------------------------------------------------------------

    async def last_seq(self, session_id: str) -> int:
        return (await self._sessions.head(self.db, session_id))[0]

    async def head(self, session_id: str) -> tuple[int, datetime | None]:
        last, born = await self._sessions.head(self.db, session_id)
        if self._replica is not None:
            self._ryw.created(session_id, born)
        return last, born

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        db = self._db
        if db is None or self.read_only:  # `_writable()`, called only to raise
            db = self._writable()
        if not batch:
            return AppendResult([], 0, *await self.head(session_id))
        refuse_nul(batch, "appending to session", session_id)
        result, followed = await self._appender.append(db, session_id, batch, expected_seq)
        if self._replica is not None:
            self._ryw.appended(session_id, max(e.sequence_number for e in result.events))
            self._ryw.created(session_id, result.session_created_at)
        if followed and result.written and self._notifier is not None:
            self._notifier.record(session_id, result.last_seq)
        return result

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        replica = self._replica
        if replica is not None:
            born: datetime | None = None
            try:
                head, born, events = await self._reader.read(replica, session_id, flt)
            except SessionNotFoundError:
                head, events = None, []
            except StorageUnavailableError:
                head, events = -1, []  # the replica is down: the primary answers
            if (
                head != -1
                and self._ryw.replica_caught_up(session_id, head)
                and self._ryw.same_session(session_id, born)
            ):
                if head is None:
                    raise SessionNotFoundError(session_id)
                return events
            _, born, events = await self._reader.read(self.db, session_id, flt)
            self._ryw.created(session_id, born)
            return events
        return (await self._reader.read(self.db, session_id, flt))[2]

    async def batch_marks(self, session_id: str) -> MarkRuns:
        """The session's batch marks (see `Backend.batch_marks`), from the primary."""
        return await self._reader.batch_marks(self.db, session_id)

    async def wait_for_append(self, session_id: str, after_seq: int) -> int:
        """Wait by LISTEN/NOTIFY (no polling): woken by an append on any host at once.

        Holds a follower lease on the session while it waits (appends notify only followed
        sessions; see `agentstore.backends.postgres.notifications`), renewing it now and
        then; where the server refuses the lease (a role that may not update rows), polls.
        """
        listener = self._listener
        if listener is None:
            raise StoreClosedError("the PostgreSQL backend is not open")
        leases = self._leases
        if self._standby or leases.refused is not None:
            # A hot standby cannot LISTEN (and NOTIFY does not reach it); a follower without
            # a lease would not be notified: poll.
            return await super().wait_for_append(session_id, after_seq)
        retry = _RETRY_FIRST
        while True:
            fut = listener.register(session_id)
            try:
                await listener.ready()
                due = leases.due_in(session_id)
                try:
                    if due is None or due <= 0:
                        last = await leases.take(self.db, session_id)
                    else:
                        last = await self.last_seq(session_id)
                except StorageUnavailableError:
                    # The server is away (or this pool's connection to it): without a lease
                    # no append notifies, so try again soon, and at once if the listener
                    # reconnects.
                    await asyncio.wait((fut,), timeout=retry)
                    retry = min(retry * 2, _RETRY_LAST)
                    continue
                except StorageError:
                    if leases.refused is None:
                        raise
                    log.warning(
                        "agentstore: %s refused the follower lease (%s): followers poll",
                        self.options.display,
                        leases.refused,
                    )
                    return await super().wait_for_append(session_id, after_seq)
                if last > after_seq:
                    # Another host appended: read it from the primary until the replica
                    # has it too (else a follower would spin on the replica's old end).
                    self._ryw.appended(session_id, last)
                    return last
                # Woken by a notification, a reconnect, or when the lease is due (a lease
                # without a renewal time here is renewed after the usual interval).
                due = leases.due_in(session_id)
                await asyncio.wait((fut,), timeout=leases.renew_after if due is None else due)
                told = fut.result() if fut.done() else None
                if told is not None and told > after_seq:
                    # The notification tells the new end, sent after its commit: no read of
                    # it (a follower's wake-up costs its read of the events only).
                    self._ryw.appended(session_id, told)
                    return told
            finally:
                listener.unregister(session_id, fut)

    # --- snapshots ----------------------------------------------------------------------

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        if not self.read_only:
            await self._snapshots.save(self.db, snapshot)

    async def load_snapshot(self, session_id: str, reducer: str | None) -> SnapshotRecord | None:
        try:
            return await self._snapshots.load(self.db, session_id, reducer)
        except StorageError as exc:
            if isinstance(exc, StorageUnavailableError):
                raise
            return None  # a cache: never fatal

    async def load_session_and_snapshot(
        self, session_id: str, reducer: str | None
    ) -> tuple[Session, SnapshotRecord | None]:
        return await self._snapshots.load_with_session(self.db, session_id, reducer)

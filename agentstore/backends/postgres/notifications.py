"""Change notification: follower leases, NOTIFY after appends (coalesced, outside the append
transaction) and one LISTEN connection per backend that wakes `wait_for_append` at once, on
any host.

Only followed sessions are notified. A follower (`wait_for_append`) LISTENs first, then
takes a lease on the session row (`followed_until = now() + FOLLOW_LEASE`, renewed every
`RENEW_AFTER` while it follows) in a statement that returns the session's `last_seq`; the
append statement, which updates that row anyway, returns whether the lease is live, and
only then is a NOTIFY sent after its commit. Why: with no follower (the common case for
agent workers) a NOTIFY per millisecond was a transaction of its own on the server, about
15% of one writer's appends here. Why it loses nothing: the lease update takes the row
lock, so it waits for an append in flight and returns its `last_seq`; every append that
takes the row after the lease sees it and notifies, and the LISTEN was in place before.
A renewal also returns `last_seq`, so a lease that lapsed (a follower stalled for longer
than the lease) costs latency, never an event. Timestamps are the server's (`now()` on
both sides), so clocks of other hosts play no part.

Why outside the append: a NOTIFY inside the transaction serialises commits on the
notification queue's lock and defeats group commit (measured here: 4,162 events/s instead
of 6,937 with 8 writers). Instead each append records (session, last_seq) and one sender
task flushes everything recorded so far in one statement, at most one per `NOTIFY_GAP`,
so many appends share one notification round trip.

Payload: `<last_seq> <session id>` (`-1` for a deleted session). A waiter registers first,
then takes its lease (or reads `last_seq`), then waits: an append between the two is never
missed. A notification wakes it with the new end it tells (no second read). When the
listening connection drops, every waiter is woken to re-read (it missed notifications)
and the listener reconnects with back-off; waiters keep waiting through an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agentstore.backends.postgres._driver import asyncpg, pgexc, translated
from agentstore.errors import SessionNotFoundError, StoreClosedError

__all__ = ["FOLLOW_LEASE", "RENEW_AFTER", "Leases", "Listener", "Notifier", "channel_name"]

log = logging.getLogger("agentstore.postgres")

# After sending, the notifier waits this long before the next NOTIFY: the appends that end
# meanwhile share one. A follower hears of an append at most this much later; one writer
# sends one NOTIFY per millisecond instead of one per append (each is a transaction of its
# own on the server, and a wake-up of every listening connection).
NOTIFY_GAP = 0.001


# A follower's lease lasts this long on the server, and is renewed this long after it was
# taken: a lease renewal is a write, so a follower woken by every append renews only now
# and then. A follower that dies leaves appends notifying for at most FOLLOW_LEASE.
FOLLOW_LEASE = 60.0
RENEW_AFTER = 20.0


def channel_name(schema: str) -> str:
    """The NOTIFY channel of a schema (identifiers are at most 63 bytes)."""
    return f"agentstore_{schema}"[:63]


class Leases:
    """The follower leases of one backend: taken, renewed, and when each is due again."""

    def __init__(
        self, schema: str, lease: float = FOLLOW_LEASE, renew_after: float = RENEW_AFTER
    ) -> None:
        self._sql = (
            f'UPDATE "{schema}".sessions SET followed_until = '
            f"greatest(followed_until, now() + interval '{lease:g} seconds') "
            "WHERE id = $1 RETURNING last_seq"
        )
        self.renew_after = renew_after
        """Seconds after which a lease taken here is renewed."""
        self._renew_at: dict[str, float] = {}
        self.refused: BaseException | None = None
        """Why the server refused a lease (a role without UPDATE, a read-only server):
        this backend's followers then poll."""

    def due_in(self, session_id: str) -> float | None:
        """Seconds until the session's lease is due for renewal (<= 0: now), or None
        when this backend holds none."""
        at = self._renew_at.get(session_id)
        return None if at is None else at - time.monotonic()

    async def take(self, db: Any, session_id: str) -> int:
        """Take or renew the lease on `session_id`; return its last sequence number.

        Raises `SessionNotFoundError`, `StorageError`s as any statement, and sets `refused`
        (raising the driver's error) when the server does not let this role write it.
        """
        sent = time.monotonic()  # the server's now() is later: the lease lasts at least this
        try:
            async with translated(f"following session {session_id!r}"):
                value = await db.fetchval(self._sql, session_id)
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(
                cause, pgexc.InsufficientPrivilegeError | pgexc.ReadOnlySQLTransactionError
            ):
                self.refused = cause
            self._renew_at.pop(session_id, None)
            raise
        if value is None:
            self._renew_at.pop(session_id, None)
            raise SessionNotFoundError(session_id)
        if len(self._renew_at) >= 10_000:  # forget leases long lapsed
            self._renew_at = {k: v for k, v in self._renew_at.items() if v > sent}
        self._renew_at[session_id] = sent + self.renew_after
        return int(value)


class Notifier:
    """Sends the coalesced notifications of one backend, on a connection of its own.

    Its own connection (opened at the first append, reopened after a failure) rather than
    one of the pool's: a notification never waits for a free pool connection and an append
    never waits behind a notification, so with one writer the NOTIFY of an append runs
    while the next append waits for its commit.
    """

    # One prepared statement, in autocommit. A transaction that writes nothing but
    # notifications has no WAL of its own, so its commit does not wait for a flush
    # (measured: the same 0.3 ms as with synchronous_commit off).
    _SQL = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._conn: asyncpg.Connection | None = None
        self._pending: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def record(self, session_id: str, last_seq: int) -> None:
        """Note that `session_id` now ends at `last_seq` (sent soon, without waiting)."""
        if self._closed:
            return
        pending = self._pending
        if last_seq > pending.get(session_id, 0) or last_seq < 0:
            pending[session_id] = last_seq
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _send(self, pending: dict[str, int]) -> None:
        payloads = [f"{seq} {sid}" for sid, seq in pending.items()]
        for attempt in (1, 2):  # a connection killed since the last send: once more
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self._connect()
                await self._conn.execute(self._SQL, self._channel, payloads)
                return
            except Exception as exc:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.terminate()
                if attempt == 2:
                    # Waiters elsewhere re-read on their listener's reconnect; nothing is
                    # lost from the log, only the prompt wake-up.
                    log.debug("agentstore: NOTIFY failed: %s", exc)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                pending, self._pending = self._pending, {}
                await self._send(pending)
                if not self._closed:
                    await asyncio.sleep(NOTIFY_GAP)
            if self._closed and not self._pending:
                return

    async def close(self) -> None:
        """Send what is pending (waiting a few seconds at most), then close the connection."""
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, 5.0)
            except Exception as exc:  # the server is away: followers re-read on reconnect
                log.debug("agentstore: pending NOTIFY not sent at close: %s", exc)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1.0)


class Listener:
    """One LISTEN connection, shared by every `wait_for_append` of a backend."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._waiters: dict[str, set[asyncio.Future[int | None]]] = {}
        self._conn: asyncpg.Connection | None = None
        self._up = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def register(self, session_id: str) -> asyncio.Future[int | None]:
        """Return a future set at the next notification for `session_id`, to the last
        sequence number it tells (-1: deleted), or to None at a reconnect (re-read)."""
        if self._closed:
            raise StoreClosedError("the PostgreSQL backend was closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(session_id, set()).add(fut)
        return fut

    def unregister(self, session_id: str, fut: asyncio.Future[int | None]) -> None:
        """Forget a future from `register`."""
        waiters = self._waiters.get(session_id)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                del self._waiters[session_id]

    async def ready(self) -> None:
        """Wait until the LISTEN is in place (so no later commit goes unseen)."""
        await self._up.wait()

    def _wake(self, session_id: str | None, seq: int | None = None) -> None:
        groups = (
            self._waiters.values() if session_id is None else [self._waiters.get(session_id, set())]
        )
        for group in list(groups):
            for fut in list(group):
                if not fut.done():
                    fut.set_result(seq)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        seq, _, session_id = str(payload).partition(" ")
        try:
            told: int | None = int(seq)
        except ValueError:
            told = None  # not ours to read: the waiter re-reads
        self._wake(session_id, told)

    def _on_close(self, _conn: object) -> None:
        self._lost.set()

    async def _run(self) -> None:
        delay = 0.05
        reconnect = False
        while True:
            try:
                conn = await self._connect()
            except Exception as exc:
                log.debug("agentstore: LISTEN connection failed: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            self._conn = conn
            self._lost.clear()
            conn.add_termination_listener(self._on_close)
            try:
                await conn.add_listener(self._channel, self._on_notify)
                self._up.set()
                if reconnect:
                    self._wake(None)  # anything committed while we were away: re-read
                reconnect = True
                while not self._lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), 5.0)
                    if not self._lost.is_set():
                        # A half-open TCP connection never reports its end: ask.
                        await conn.fetchval("SELECT 1", timeout=5.0)
            except Exception as exc:
                log.debug("agentstore: LISTEN connection lost: %s", exc)
            finally:
                self._up.clear()
                self._conn = None
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1.0)
            self._wake(None)

    async def close(self) -> None:
        """Stop listening and close the connection; later waits raise `StoreClosedError`."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wake(None)

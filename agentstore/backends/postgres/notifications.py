"""Change notification: NOTIFY after appends (coalesced, outside the append transaction) and
one LISTEN connection per backend that wakes `wait_for_append` at once, on any host.

Why outside the append: a NOTIFY inside the transaction serialises commits on the
notification queue's lock and defeats group commit (measured here: 4,162 events/s instead
of 6,937 with 8 writers). Instead each append records (session, last_seq) and one sender
task flushes everything recorded so far in one statement, at most one per `NOTIFY_GAP`,
so many appends share one notification round trip.

Payload: `<last_seq> <session id>` (`-1` for a deleted session). A waiter registers first,
then reads `last_seq`, then waits: an append between the two is never missed. When the
listening connection drops, every waiter is woken to re-read (it missed notifications) and
the listener reconnects with back-off; waiters keep waiting through an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from agentstore.backends.postgres._driver import asyncpg
from agentstore.errors import StoreClosedError

__all__ = ["Listener", "Notifier", "channel_name"]

log = logging.getLogger("agentstore.postgres")

# After sending, the notifier waits this long before the next NOTIFY: the appends that end
# meanwhile share one. A follower hears of an append at most this much later; one writer
# sends one NOTIFY per millisecond instead of one per append (each is a transaction of its
# own on the server, and a wake-up of every listening connection).
NOTIFY_GAP = 0.001


def channel_name(schema: str) -> str:
    """The NOTIFY channel of a schema (identifiers are at most 63 bytes)."""
    return f"agentstore_{schema}"[:63]


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
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._conn: asyncpg.Connection | None = None
        self._up = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def register(self, session_id: str) -> asyncio.Future[None]:
        """Return a future set at the next notification for `session_id` (or a reconnect)."""
        if self._closed:
            raise StoreClosedError("the PostgreSQL backend was closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(session_id, set()).add(fut)
        return fut

    def unregister(self, session_id: str, fut: asyncio.Future[None]) -> None:
        """Forget a future from `register`."""
        waiters = self._waiters.get(session_id)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                del self._waiters[session_id]

    async def ready(self) -> None:
        """Wait until the LISTEN is in place (so no later commit goes unseen)."""
        await self._up.wait()

    def _wake(self, session_id: str | None) -> None:
        groups = (
            self._waiters.values() if session_id is None else [self._waiters.get(session_id, set())]
        )
        for group in list(groups):
            for fut in list(group):
                if not fut.done():
                    fut.set_result(None)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        _, _, session_id = str(payload).partition(" ")
        self._wake(session_id)

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

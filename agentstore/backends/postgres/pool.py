"""Connections to one server, pooled, and single-statement helpers on them.

A small pool of our own rather than asyncpg's: checking a connection out of asyncpg's pool
and back costs about as much client CPU as the append statement itself (a wrapper task
for the timeout, a shielded release task, a proxy object), and on a machine where client
and server share the cores that CPU is throughput. Here a checkout is a list pop when a
connection is idle; the most recently used connection is handed out first, so one writer
task keeps using the same connection (and its prepared statements).

Rules that keep it safe:

- A connection goes back to the pool only after a statement that ended normally or with
  an error reported by the server (a constraint violation, a cancelled statement), and
  never inside a transaction block. After anything else (a lost connection, a client
  timeout, a cancelled task) it is closed: it may be mid-message or mid-cancel.
- The statement timeout is set on the server (`statement_timeout`), so the server cancels
  a statement that runs too long even if the client is gone; the client waits a little
  longer and then cancels it too. Behind pgbouncer in transaction mode startup settings
  are refused, so there only the client-side timeout applies (asyncpg sends a cancel
  request, which pgbouncer forwards).
- A connection the server ended while it was idle here is dropped at checkout, and one
  caught between the server's goodbye and the end of its stream (it cannot start a
  statement, yet does not look closed) is dropped when the statement fails to start; the
  statement then runs on another connection, as nothing was sent.
- Connections idle for longer than five minutes beyond `pool_min_size` are closed.
- A statement the client gives up on (its task cancelled, the client's timeout passed) is
  cancelled on the server: asyncpg sends a cancel request then, and its connection is
  closed only once that request went out (`_discard`). Closed at once, it cancelled the
  request with it, and the statement ran on: an append waiting for a row lock committed
  when it got it, after its caller was told it failed (measured: still waiting 10 s
  later, applied once the lock was released).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from asyncio import get_running_loop
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from agentstore.backends.postgres._driver import CONNECTION_ERRORS, asyncpg, pgexc, translated
from agentstore.backends.postgres.deadlines import Deadlines, task_of, untimed_config
from agentstore.backends.postgres.options import PostgresOptions, redact
from agentstore.backends.postgres.times import use_exact_times

__all__ = ["Database", "connect", "create_database"]

_FETCH = asyncpg.Connection.fetch
_FETCHROW = asyncpg.Connection.fetchrow
_FETCHVAL = asyncpg.Connection.fetchval
_EXECUTE = asyncpg.Connection.execute

# How much longer than the server's statement_timeout the client waits before it cancels.
_CLIENT_GRACE = 2.0
# Idle connections beyond the minimum are closed after this many seconds.
_IDLE_LIFETIME = 300.0
# At most this many seconds more than connect_timeout for a cancel request to go out.
_CANCEL_GRACE = 5.0


def _connect_kwargs(options: PostgresOptions) -> dict[str, Any]:
    settings = {"application_name": "agentstore"}
    if options.statement_timeout and not options.pgbouncer:
        settings["statement_timeout"] = str(int(options.statement_timeout * 1000))
    return {
        "timeout": options.connect_timeout,
        "command_timeout": (options.statement_timeout + _CLIENT_GRACE)
        if options.statement_timeout
        else None,
        "statement_cache_size": 0 if options.pgbouncer else 100,
        "server_settings": settings,
    }


async def connect(options: PostgresOptions, dsn: str | None = None) -> Any:
    """Open one connection outside the pool (the LISTEN connection, migrations)."""
    target = dsn or options.dsn
    async with translated(f"connecting to {redact(target)}"):
        conn = await asyncpg.connect(target, **_connect_kwargs(options))
        await use_exact_times(conn)
        return conn


def _unsent(exc: BaseException) -> bool:
    """Tell whether `exc` was raised before the statement was sent: asyncpg's protocol was
    not idle, as after it read the goodbye of a server that ended the connection (a
    restart, pg_terminate_backend) but not yet the end of the stream, so the connection
    did not look closed. Nothing reached the server: the statement may run elsewhere."""
    return isinstance(exc, pgexc.InternalClientError) and str(exc).startswith(
        "cannot switch to state"
    )


def _reusable(conn: Any, exc: BaseException) -> bool:
    """Tell whether `conn` may serve the next caller after `exc` ended its statement."""
    # QueryCanceledError (statement_timeout) is in CONNECTION_ERRORS' class 57, but the
    # connection is fine after it.
    server_side = isinstance(exc, asyncpg.PostgresError) and (
        isinstance(exc, pgexc.QueryCanceledError) or not isinstance(exc, CONNECTION_ERRORS)
    )
    return server_side and not (conn.is_closed() or conn.is_in_transaction())


class Database:
    """A pool of connections to one server, with one-statement helpers.

    Each helper checks a connection out for one statement (waiting at most `pool_timeout`
    for a free one); `acquire()` holds one for a transaction.
    """

    def __init__(self, options: PostgresOptions, dsn: str | None = None) -> None:
        self._dsn = dsn or options.dsn
        self._kwargs = _connect_kwargs(options)
        self._timeout = options.pool_timeout or None
        self.min_size = options.pool_min_size
        self.max_size = options.pool_max_size
        self._idle: list[Any] = []  # a stack: the last one returned is the next one out
        self._idle_since: list[float] = []
        self._size = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._closed = False
        # Connections closed once their statement's cancel request went out (`_discard`).
        self._cancelling: set[asyncio.Task[None]] = set()
        self._cancel_wait = options.connect_timeout + _CANCEL_GRACE
        # The client's timeout on one-statement helpers (`deadlines.py`), and asyncpg's
        # configuration of a connection without its own timer (from the first one opened).
        timeout = self._kwargs["command_timeout"]
        self._deadlines = Deadlines(timeout) if timeout else None
        self._untimed: Any = None

    @property
    def size(self) -> int:
        """Connections open (idle or in use) or being opened."""
        return self._size

    async def open(self) -> None:
        """Open `min_size` connections (so a bad URL or a server away fails here)."""
        self._size += self.min_size
        conns = await asyncio.gather(
            *(self._new() for _ in range(self.min_size)), return_exceptions=True
        )
        for conn in conns:
            if not isinstance(conn, BaseException):
                self._checkin(conn)
        for conn in conns:
            if isinstance(conn, BaseException):
                await self.close()
                raise conn

    async def _new(self) -> Any:
        """Open a connection in a slot already counted in `_size`."""
        try:
            async with translated(f"connecting to {redact(self._dsn)}"):
                conn = await asyncpg.connect(self._dsn, **self._kwargs)
                try:
                    await use_exact_times(conn)
                except BaseException:
                    conn.terminate()
                    raise
                if self._untimed is None and self._deadlines is not None:
                    self._untimed = untimed_config(conn)
                return conn
        except BaseException:
            self._free_slot()
            raise

    def _take_idle(self) -> Any:
        """The most recently returned idle connection that is still open, or None."""
        while self._idle:
            self._idle_since.pop()
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
            self._discard(conn)  # ended by the server while idle (a restart, a kill)
        return None

    async def _checkout(self) -> Any:
        conn = self._take_idle()
        if conn is not None:
            return conn
        if self._closed:
            raise asyncpg.InterfaceError("the connection pool is closed")
        if self._size < self.max_size:
            self._size += 1
            return await self._new()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        timer = None
        if self._timeout is not None:
            timer = fut.get_loop().call_later(self._timeout, _expire, fut)
        try:
            conn = await fut  # a connection, or None: a free slot to open one in
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # Handed over just as this task was cancelled: pass it on.
                handed = fut.result()
                self._free_slot() if handed is None else self._checkin(handed)
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        return conn if conn is not None else await self._new()

    def _checkin(self, conn: Any) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        if self._closed:
            self._discard(conn)
            return
        now = time.monotonic()
        self._idle.append(conn)
        self._idle_since.append(now)
        # The bottom of the stack is the connection idle longest: trim one if it is stale.
        if len(self._idle) > self.min_size and now - self._idle_since[0] > _IDLE_LIFETIME:
            del self._idle_since[0]
            self._discard(self._idle.pop(0))

    def _discard(self, conn: Any) -> None:
        # asyncpg's cancel requests of the statement `conn` was running (a task cancelled
        # or timed out in it): terminate() would cancel them before they go out, and
        # the statement would run on on the server. (A private set of asyncpg's; without
        # it, as in an asyncpg that renamed it, the connection closes at once as before.)
        cancels = getattr(conn, "_cancellations", None)
        if cancels:
            task = asyncio.get_running_loop().create_task(
                _terminate_once_sent(conn, set(cancels), self._cancel_wait)
            )
            self._cancelling.add(task)
            task.add_done_callback(self._cancelling.discard)
        else:
            conn.terminate()
        self._free_slot()

    def _free_slot(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes on: the waiter opens a connection
                return
        self._size -= 1

    def _after(self, conn: Any, exc: BaseException) -> None:
        if _reusable(conn, exc):
            self._checkin(conn)
        else:
            self._discard(conn)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        """Check a connection out of the pool (`async with db.acquire() as conn:`).

        A connection that failed at the connection level (terminated by the server, a
        broken socket, a protocol left mid-message, a cancelled call) is closed rather than
        returned, so the pool opens a fresh one instead of handing a broken one on.
        """
        conn = await self._checkout()
        try:
            yield conn
        except BaseException as exc:
            self._after(conn, exc)
            raise
        if conn.is_in_transaction() or conn.is_closed():
            self._discard(conn)
        else:
            self._checkin(conn)

    async def _run(self, method: Any, sql: str, args: tuple[Any, ...]) -> Any:
        """Run `method(conn, sql, *args)` (an asyncpg `Connection` method) on a pooled
        connection.

        A connection that turns out unable to start a statement (`_unsent`) is dropped
        and the statement runs on another: nothing had been sent, so this is no retry.
        """
        deadlines = self._deadlines
        for _ in range(self.max_size + 1):
            # An idle connection, without a call of its own (`_take_idle`) when the one on
            # top is open: on every statement's path.
            idle = self._idle
            if idle and not idle[-1].is_closed():
                self._idle_since.pop()
                conn = idle.pop()
            else:
                conn = await self._checkout()
            untimed = self._untimed
            timed: Any = None  # the connection's own configuration, while the pool times it
            if untimed is not None and deadlines is not None:
                # Timed by the pool's deadlines rather than a timer of asyncpg's own; the
                # connection gets its configuration back before anything else sees it
                # (a cancel request asyncpg sends reads its timeout from there).
                timed = conn._config
                conn._config = untimed
                loop = get_running_loop()
                task = task_of(loop)
                deadlines.running[conn] = (task, deadlines.tick)  # type: ignore[assignment]
                if deadlines.handle is None:
                    deadlines.arm(loop)
            try:
                result = await method(conn, sql, *args)
            except BaseException as exc:
                if timed is not None:
                    assert deadlines is not None
                    conn._config = timed
                    del deadlines.running[conn]
                    expired = deadlines.expired
                    if expired and conn in expired:
                        expired.discard(conn)
                        if task.uncancel() == 0:  # type: ignore[union-attr]
                            # Cancelled by the deadline alone: asyncpg's own timeout
                            # would have raised this.
                            self._after(conn, exc)
                            raise TimeoutError("no answer within the client's timeout") from exc
                self._after(conn, exc)
                if _unsent(exc):
                    last = exc
                    continue
                raise
            if timed is not None:
                assert deadlines is not None
                conn._config = timed
                del deadlines.running[conn]
                expired = deadlines.expired
                if expired and conn in expired:  # never: a cancelled task ends in `except`
                    expired.discard(conn)
                    task.uncancel()  # type: ignore[union-attr]
            self._checkin(conn)
            return result
        raise last

    # The helpers hand back `_run`'s coroutine rather than awaiting it in one of their
    # own: a coroutine less to make and resume on every statement.

    def fetch(self, sql: str, *args: Any) -> Coroutine[Any, Any, list[Any]]:
        """Run a query and return all its rows."""
        return self._run(_FETCH, sql, args)

    def fetchrow(self, sql: str, *args: Any) -> Coroutine[Any, Any, Any]:
        """Run a query and return its first row, or None."""
        return self._run(_FETCHROW, sql, args)

    def fetchval(self, sql: str, *args: Any) -> Coroutine[Any, Any, Any]:
        """Run a query and return the first column of its first row, or None."""
        return self._run(_FETCHVAL, sql, args)

    def execute(self, sql: str, *args: Any) -> Coroutine[Any, Any, str]:
        """Run a statement; return its status tag."""
        return self._run(_EXECUTE, sql, args)

    async def close(self) -> None:
        """Close the idle connections (in-use ones close as they come back); fail waiters."""
        self._closed = True
        if self._deadlines is not None:
            self._deadlines.close()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(asyncpg.InterfaceError("the connection pool is closed"))
        idle, self._idle, self._idle_since = self._idle, [], []
        self._size -= len(idle)
        results = await asyncio.gather(
            *(asyncio.wait_for(c.close(), 5.0) for c in idle), return_exceptions=True
        )
        for conn, result in zip(idle, results, strict=True):
            if isinstance(result, BaseException):
                conn.terminate()
        if self._cancelling:  # bounded by `_cancel_wait`
            await asyncio.gather(*self._cancelling, return_exceptions=True)


async def _terminate_once_sent(conn: Any, cancels: set[Any], within: float) -> None:
    """Close `conn` once asyncpg's cancel requests of its statement are sent (or after
    `within` seconds: a server that does not answer them gets the connection closed)."""
    try:
        await asyncio.wait(cancels, timeout=within)
    finally:
        conn.terminate()


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError("no free connection within pool_timeout"))


async def create_database(options: PostgresOptions, dsn: str | None = None) -> Database:
    """Open a pool on `dsn` (default: the primary's) with the options' sizes and timeouts."""
    db = Database(options, dsn)
    await db.open()
    return db

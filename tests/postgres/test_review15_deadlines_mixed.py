"""Review of the pool's deadlines (deadlines.py) under mixed traffic: statements that run
past the client's timeout, statements their callers cancel, and quick ones, on one pool.

Each statement past the timeout fails with TimeoutError within its window and is cancelled
on the server; a caller's own cancellation stays a cancellation (not turned into the
pool's TimeoutError); the quick statements beside them never fail; and every connection
the pool keeps has its own client timeout back (a transaction on it is still timed).

`pgbouncer=true`: the server gets no `statement_timeout`, only the client's (0.5 + 2 s).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from agentstore.backends.postgres import PostgresBackend
from agentstore.backends.postgres.deadlines import TICK

_CLIENT_TIMEOUT = 2.5
_SLEEP = "SELECT pg_sleep(30)"


async def _sleeping(admin: asyncpg.Connection) -> int:
    return int(
        await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND state = 'active' AND query = $1",
            _SLEEP,
        )
    )


async def _until_none_sleep(admin: asyncpg.Connection, within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        left = await _sleeping(admin)
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)  # the server has no event to wait for


async def test_timeouts_cancels_and_quick_statements_on_one_pool(
    pg_url: str, admin: asyncpg.Connection
) -> None:
    backend = PostgresBackend(
        f"{pg_url}&pgbouncer=true&statement_timeout=0.5&pool_max_size=4", notify=False
    )
    await backend.open()
    db = backend.db
    try:

        async def timed_out() -> float:
            start = time.monotonic()
            with pytest.raises(TimeoutError) as caught:
                await db.fetchval(_SLEEP)
            assert "client's timeout" in str(caught.value)
            # The task goes on (not left cancelled) and its next statement runs.
            assert await db.fetchval("SELECT 7") == 7
            return time.monotonic() - start

        async def cancelled_by_its_caller() -> None:
            task = asyncio.ensure_future(db.fetchval(_SLEEP))
            await asyncio.sleep(1.0)  # past a tick or two of the pool's timer
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        async def quick(stop: float) -> int:
            done = 0
            while time.monotonic() < stop:
                assert await db.fetchval("SELECT $1::int", done) == done
                done += 1
            return done

        stop = time.monotonic() + _CLIENT_TIMEOUT + 2 * TICK + 0.5
        results = await asyncio.gather(
            timed_out(), timed_out(), cancelled_by_its_caller(), quick(stop)
        )
        for took in results[:2]:
            assert _CLIENT_TIMEOUT <= took < _CLIENT_TIMEOUT + TICK + 2.0
        assert results[3] > 0
        # Every sleeping statement was cancelled on the server, not left to run 30 s.
        assert await _until_none_sleep(admin, within=5.0) == 0
        # The connections kept have their own client timeout back.
        for conn in db._idle:
            assert conn._config.command_timeout == _CLIENT_TIMEOUT
        assert not db._deadlines.running and not db._deadlines.expired
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with db.acquire() as conn, conn.transaction():
                await conn.fetchval(_SLEEP)
        assert time.monotonic() - start < _CLIENT_TIMEOUT + 2.0
    finally:
        await backend.close()


async def test_a_caller_timeout_and_the_pool_deadline_together_stay_the_callers(
    pg_url: str,
) -> None:
    # asyncio.timeout of the caller expiring just as the pool gives up: the caller's own
    # TimeoutError (its context manager's), and the task is not left cancelled.
    backend = PostgresBackend(
        f"{pg_url}&pgbouncer=true&statement_timeout=0.5&pool_max_size=2", notify=False
    )
    await backend.open()
    db = backend.db
    try:
        for within in (2.4, 2.6, 2.9):  # about where the pool gives up (2.5-3.0 s)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(within):
                    await db.fetchval(_SLEEP)
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
            assert await db.fetchval("SELECT 1") == 1
    finally:
        await backend.close()

"""The client's timeout on the pool's statements (`deadlines.py`): one timer per pool ends
a one-statement helper that runs past it, and statements in a transaction keep asyncpg's
own timer, also on a connection the helpers used before. (A store call past it raises
StorageUnavailableError, and the server's statement is cancelled:
test_review13_cancel_on_server.py.)

`pgbouncer=true`: the server gets no `statement_timeout`, so only the client's timeout
(statement_timeout + 2 s) can end a statement, as behind pgbouncer.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from agentstore.backends.postgres import PostgresBackend
from agentstore.backends.postgres.deadlines import TICK

# statement_timeout=0.5: the client gives up after 2.5 s.
_CLIENT_TIMEOUT = 2.5


async def _backend(pg_url: str) -> PostgresBackend:
    backend = PostgresBackend(
        f"{pg_url}&pgbouncer=true&statement_timeout=0.5&pool_max_size=1", notify=False
    )
    await backend.open()
    return backend


async def test_a_helper_statement_past_the_client_timeout_fails_and_is_cancelled(
    pg_url: str,
) -> None:
    backend = await _backend(pg_url)
    try:
        db = backend.db
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await db.fetchval("SELECT pg_sleep(30)")
        took = time.monotonic() - start
        assert _CLIENT_TIMEOUT <= took < _CLIENT_TIMEOUT + TICK + 2.0
        # The connection was closed once its cancel request went out; the next statement
        # gets a fresh one and is not cut short by what happened before.
        assert await db.fetchval("SELECT 1") == 1
        # The caller's task is not left cancelled: it goes on awaiting.
        await asyncio.sleep(0)
    finally:
        await backend.close()


async def test_a_helper_statement_shorter_than_the_timeout_is_left_alone(pg_url: str) -> None:
    backend = await _backend(pg_url)
    try:
        # Runs across several ticks of the pool's timer, within the timeout.
        assert await backend.db.fetchval("SELECT pg_sleep(1.6)::text || 'done'") == "done"
    finally:
        await backend.close()


async def test_a_transaction_keeps_the_client_timeout_after_helpers_used_its_connection(
    pg_url: str,
) -> None:
    backend = await _backend(pg_url)
    try:
        db = backend.db
        for _ in range(3):  # the pool's only connection, timed by the pool meanwhile
            assert await db.fetchval("SELECT 1") == 1
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with db.acquire() as conn, conn.transaction():
                await conn.fetchval("SELECT pg_sleep(30)")
        assert time.monotonic() - start < _CLIENT_TIMEOUT + 2.0
        assert await db.fetchval("SELECT 2") == 2
    finally:
        await backend.close()

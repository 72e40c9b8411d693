"""The pool's `fetch` runs a connection's prepared statement itself (statements.py): it
must recover where asyncpg's `Connection.fetch` does. A table changed under a prepared
statement (the server calls the cached plan invalid) answers with the new columns; a
statement asyncpg closed (evicted from its cache) is prepared again; behind pgbouncer
(no statement cache) asyncpg's own path runs, and nothing is kept; the pool's deadlines
end a statement run this way as they end one run through asyncpg.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from agentstore.backends.postgres import PostgresBackend
from agentstore.backends.postgres.deadlines import TICK


async def _open(url: str) -> PostgresBackend:
    backend = PostgresBackend(f"{url}&pool_max_size=1", notify=False)
    await backend.open()
    return backend


async def test_a_table_changed_under_a_prepared_statement(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    backend = await _open(pg_url)
    table = f'"{pg_schema}".changed'
    try:
        db = backend.db
        await db.execute(f"CREATE TABLE {table} (a int)")
        await db.execute(f"INSERT INTO {table} VALUES (1)")
        sql = f"SELECT * FROM {table}"
        assert [tuple(r) for r in await db.fetch(sql)] == [(1,)]
        assert db._prepared  # kept by the pool
        await admin.execute(f"ALTER TABLE {table} ADD COLUMN b text DEFAULT 'x'")
        assert [tuple(r) for r in await db.fetch(sql)] == [(1, "x")]
        assert [tuple(r) for r in await db.fetch(sql)] == [(1, "x")]
    finally:
        await backend.close()


async def test_a_statement_asyncpg_closed_is_prepared_again(pg_url: str) -> None:
    backend = await _open(pg_url)
    try:
        db = backend.db
        first = "SELECT $1::int + 1"
        assert [tuple(r) for r in await db.fetch(first, 1)] == [(2,)]
        (conn,) = db._prepared
        state = db._prepared[conn][first]
        # More statements than asyncpg's cache holds (100): the first is evicted, closed.
        for k in range(110):
            assert await db.fetchval(f"SELECT {k}::int") == k
            await db.fetch(f"SELECT {k}::bigint")
        assert state.closed
        assert [tuple(r) for r in await db.fetch(first, 41)] == [(42,)]
        assert not db._prepared[conn][first].closed
    finally:
        await backend.close()


async def test_behind_pgbouncer_asyncpg_runs_the_statements(pg_url: str) -> None:
    backend = PostgresBackend(f"{pg_url}&pgbouncer=true", notify=False)
    await backend.open()
    try:
        assert [tuple(r) for r in await backend.db.fetch("SELECT $1::text", "a")] == [("a",)]
        assert backend.db._prepared is None
    finally:
        await backend.close()


async def test_a_closed_connections_statements_are_dropped(pg_url: str) -> None:
    backend = await _open(pg_url)
    db = backend.db
    try:
        await db.fetch("SELECT 1")
        (conn,) = db._prepared
        conn.terminate()  # the server's connection gone while idle
        assert [tuple(r) for r in await db.fetch("SELECT 2")] == [(2,)]
        assert conn not in db._prepared
    finally:
        await backend.close()
    assert not db._prepared


async def test_the_pools_deadline_ends_a_statement_run_this_way(
    pg_url: str, admin: asyncpg.Connection
) -> None:
    # The server's statement_timeout switched off on the pool's only connection: only the
    # client's timeout (0.5 + 2 s, the pool's deadlines) can end the statement, which is
    # then cancelled on the server, and the connection is not used again.
    backend = PostgresBackend(f"{pg_url}&statement_timeout=0.5&pool_max_size=1", notify=False)
    await backend.open()
    db = backend.db
    try:
        await db.fetch("SELECT set_config('statement_timeout', '0', false)")
        (conn,) = db._prepared
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await db.fetch("SELECT pg_sleep(30)")
        assert 2.5 <= time.monotonic() - start < 2.5 + TICK + 2.0
        assert conn not in db._prepared
        assert [tuple(r) for r in await db.fetch("SELECT 3")] == [(3,)]
        deadline = time.monotonic() + 5.0
        while await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' "
            "AND state = 'active'"
        ):
            assert time.monotonic() < deadline, "the statement still runs on the server"
            await asyncio.sleep(0.05)  # the server has no event to wait for
    finally:
        await backend.close()

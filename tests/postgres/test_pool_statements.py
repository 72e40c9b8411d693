"""The pool's `fetch` runs a connection's prepared statement itself (statements.py): it
must recover where asyncpg's `Connection.fetch` does. A table changed under a prepared
statement (the server calls the cached plan invalid) answers with the new columns; a
statement asyncpg closed (evicted from its cache) is prepared again; behind pgbouncer
(no statement cache) asyncpg's own path runs, and nothing is kept.
"""

from __future__ import annotations

import asyncpg

from agentstore.backends.postgres import PostgresBackend


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

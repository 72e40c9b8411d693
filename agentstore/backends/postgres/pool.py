"""Connection pools built from `PostgresOptions`, and single-statement helpers on them.

Two choices measured on this workload (docs/postgres.md):

- No reset query when a connection goes back to the pool: asyncpg's default runs a second
  statement per checkout (3,299 appends/s instead of 4,512 with 8 writers). Every
  statement here runs in autocommit or in a transaction block that always ends, so there is
  nothing to reset; a connection left inside a transaction (a cancelled task) is rolled
  back.
- The statement timeout is set on the server (`statement_timeout`), so the server cancels a
  statement that runs too long even if the client is gone; the client waits a little longer
  and then cancels it too. Behind pgbouncer in transaction mode startup settings are
  refused, so there only the client-side timeout applies (asyncpg sends a cancel request,
  which pgbouncer forwards).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agentstore.backends.postgres._driver import CONNECTION_ERRORS, asyncpg, pgexc, translated
from agentstore.backends.postgres.options import PostgresOptions, redact

__all__ = ["Database", "connect", "create_database"]

# How much longer than the server's statement_timeout the client waits before it cancels.
_CLIENT_GRACE = 2.0


async def _reset(conn: Any) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


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
        return await asyncpg.connect(target, **_connect_kwargs(options))


class Database:
    """A pool of connections to one server, with one-statement helpers.

    Each helper checks a connection out for one statement (waiting at most `pool_timeout`
    for a free one); `acquire()` holds one for a transaction.
    """

    def __init__(self, pool: Any, options: PostgresOptions) -> None:
        self.pool = pool
        self._acquire_timeout = options.pool_timeout or None

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        """Check a connection out of the pool (`async with db.acquire() as conn:`).

        A connection that failed at the connection level (terminated by the server, a
        broken socket, a protocol left mid-message) is closed rather than returned, so the
        pool opens a fresh one instead of handing a broken one to the next caller.
        """
        async with self.pool.acquire(timeout=self._acquire_timeout) as conn:
            try:
                yield conn
            except CONNECTION_ERRORS as exc:
                if not isinstance(exc, pgexc.QueryCanceledError):  # that one is fine
                    conn.terminate()
                raise

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Run a query and return all its rows."""
        async with self.acquire() as conn:
            rows: list[Any] = await conn.fetch(sql, *args)
            return rows

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        """Run a query and return its first row, or None."""
        async with self.acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Run a query and return the first column of its first row, or None."""
        async with self.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        """Run a statement; return its status tag."""
        async with self.acquire() as conn:
            status: str = await conn.execute(sql, *args)
            return status

    async def close(self) -> None:
        """Close every connection (waiting at most a few seconds for them to be returned)."""
        try:
            await asyncio.wait_for(self.pool.close(), 5.0)
        except Exception:
            self.pool.terminate()


async def create_database(options: PostgresOptions, dsn: str | None = None) -> Database:
    """Open a pool on `dsn` (default: the primary's) with the options' sizes and timeouts."""
    target = dsn or options.dsn
    async with translated(f"connecting to {redact(target)}"):
        pool = await asyncpg.create_pool(
            target,
            min_size=options.pool_min_size,
            max_size=options.pool_max_size,
            reset=_reset,
            **_connect_kwargs(options),
        )
    return Database(pool, options)

"""A pool's `fetch` without asyncpg's Python layers around its protocol call.

`Connection.fetch` goes through five coroutines of asyncpg's Python (`fetch`, `_execute`
with its exclusive-section guard, `__execute` with an executor closure, `_do_execute`,
`_get_statement` and the statement cache's LRU bookkeeping) before the protocol's
`bind_execute` (Cython) sends the statement: on a lone append they cost more client
instructions than the statement's encoding and the answer's decoding together. The pool
keeps the prepared statement of each SQL text per connection itself and calls
`bind_execute` with it, as `_do_execute` does:

- a statement is prepared, and kept in asyncpg's cache too, by asyncpg's own
  `_get_statement` (type introspection, the cache's closing of evicted statements);
- one that asyncpg closed since (evicted from its cache, its lifetime over, the cache
  dropped) is prepared again;
- the errors `_do_execute` recovers from are recovered from the same way: a cached
  statement the server calls invalid (the table changed) is dropped with the cache and the
  statement runs once more through `Connection.fetch`; an outdated type cache is reloaded
  and the error raised;
- the client's timeout is the protocol's (`timeout=None`: the connection's
  `command_timeout`, which the pool's deadlines set to none while they time it).

Used only where asyncpg keeps its statements in a cache (not `pgbouncer=true`, where
every statement is prepared unnamed anew) and has the parts named here; elsewhere the
pool calls `Connection.fetch`.
"""

from __future__ import annotations

from typing import Any

from agentstore.backends.postgres._driver import asyncpg, pgexc

__all__ = ["fetch", "usable"]

_FETCH = asyncpg.Connection.fetch


def usable(conn: Any) -> bool:
    """Whether statements on `conn` may run through `fetch` (see the module's docstring)."""
    protocol = getattr(conn, "_protocol", None)
    return (
        getattr(conn, "_stmt_cache_enabled", False) is True
        and hasattr(protocol, "bind_execute")
        and hasattr(conn, "_get_statement")
        and hasattr(conn, "_drop_global_statement_cache")
        and isinstance(getattr(conn, "_query_loggers", None), set)
    )


async def fetch(
    conn: Any, prepared: dict[Any, dict[str, Any]], sql: str, args: tuple[Any, ...]
) -> Any:
    """`conn.fetch(sql, *args)`; `prepared`: the pool's prepared statements, by connection
    and SQL (the pool drops a connection's when it closes it)."""
    if conn._query_loggers:  # someone logs its queries: asyncpg's path does
        return await _FETCH(conn, sql, *args)
    states = prepared.get(conn)
    if states is None:
        states = prepared[conn] = {}
    state = states.get(sql)
    if state is None or state.closed:
        state = states[sql] = await conn._get_statement(sql, None)
    try:
        return await conn._protocol.bind_execute(state, args, "", 0, False, None)
    except pgexc.InvalidCachedStatementError:
        # As `_do_execute`: the statement is prepared anew and runs once more (the pool
        # never runs one inside a transaction, where the error would stand).
        states.clear()
        conn._drop_global_statement_cache()
        return await _FETCH(conn, sql, *args)
    except pgexc.OutdatedSchemaCacheError:
        states.clear()
        await conn.reload_schema_state()
        raise

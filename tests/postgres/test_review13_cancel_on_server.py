"""A statement the client gives up on is cancelled on the server, not left running.

When the caller's task is cancelled (`asyncio.timeout` around an append) or the client's
timeout passes (behind pgbouncer, where the server gets no `statement_timeout`), asyncpg
sends the server a cancel request for the statement; the pool closed the connection at
once, which cancelled that request before it went out. The statement then waited on for
its lock and committed once it got it: an append the caller was told had failed (or never
returned) appeared later, and the server connection stayed busy meanwhile (forever with
`statement_timeout=0`). docs/postgres.md: "cancelled on the server, not only abandoned".
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StorageUnavailableError


async def _waiting_appends(admin: asyncpg.Connection, schema: str) -> int:
    """Statements of the store still running on the server (waiting for the row lock)."""
    return int(
        await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND state = 'active' AND query LIKE $1",
            f'%UPDATE "{schema}".sessions%',
        )
    )


async def _until_none_wait(admin: asyncpg.Connection, schema: str, within: float) -> int:
    """Poll until no append of the store runs on the server (or `within` seconds)."""
    deadline = time.monotonic() + within
    while True:
        waiting = await _waiting_appends(admin, schema)
        if not waiting or time.monotonic() > deadline:
            return waiting
        await asyncio.sleep(0.05)  # the server has no event to wait for


@pytest.mark.parametrize("how", ["task cancelled", "client timeout"])
async def test_an_append_given_up_on_is_cancelled_on_the_server(
    pg_url: str, pg_database_url: str, pg_schema: str, admin: asyncpg.Connection, how: str
) -> None:
    # pgbouncer=true: no statement_timeout on the server, only the client's (1 + 2 s).
    url = f"{pg_url}&pgbouncer=true&statement_timeout=1&pool_max_size=2"
    async with agentstore.open(url, snapshot_interval=0) as store:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {"n": 1}))
        given_up = new_event("custom", {"n": 2})
        # Another host holds the session row (a long transaction); `admin` watches the
        # server from outside it (pg_stat_activity is read once per transaction).
        holder = await asyncpg.connect(pg_database_url)
        locker = holder.transaction()
        await locker.start()
        try:
            await holder.execute(
                f'SELECT 1 FROM "{pg_schema}".sessions WHERE id = $1 FOR UPDATE', session.id
            )
            if how == "task cancelled":
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await store.append(session.id, given_up)
            else:
                with pytest.raises(StorageUnavailableError):
                    await store.append(session.id, given_up)
            assert await _until_none_wait(admin, pg_schema, within=10.0) == 0
        finally:
            await locker.rollback()
            await holder.close()
        # The lock is free: the given-up append was not applied behind the caller's back.
        assert [e.payload["n"] for e in await store.replay(session.id)] == [1]
        # And the store goes on: a retry with the same event writes it once.
        assert (await store.append(session.id, given_up)).sequence_number == 2
        assert [e.payload["n"] for e in await store.replay(session.id)] == [1, 2]

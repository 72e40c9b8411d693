"""The backend's own connection pool and its NOTIFY connection: a caller waits for a free
connection at most `pool_timeout`, a connection left in an unknown state is never handed
out again, and a cut NOTIFY connection does not leave followers elsewhere asleep."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import PostgresBackend
from agentstore.errors import StorageUnavailableError


async def test_a_caller_waits_for_a_free_connection_then_times_out(pg_url: str) -> None:
    backend = PostgresBackend(pg_url, pool_max_size=1, pool_timeout=0.3, notify=False)
    async with agentstore.open(backend) as store:
        session = await store.create_session()
        async with backend.db.acquire():  # the only connection is busy
            with pytest.raises(StorageUnavailableError, match="pool_timeout"):
                await store.append(session.id, new_event("custom", {"n": 1}))
            waiting = asyncio.create_task(store.append(session.id, new_event("custom", {})))
            await asyncio.sleep(0.05)  # let it queue (not a synchronisation: any order works)
        # Handed the connection as soon as it was returned.
        stored = await asyncio.wait_for(waiting, 5)
        assert stored.sequence_number == 1
        assert backend.db.size == 1


async def test_a_cancelled_append_never_hands_its_connection_on(
    pg_url: str, pg_database_url: str, pg_schema: str
) -> None:
    backend = PostgresBackend(pg_url, pool_max_size=1, notify=False)
    async with agentstore.open(backend) as store:
        session = await store.create_session()
        blocker = await asyncpg.connect(pg_database_url)
        try:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(
                f'SELECT 1 FROM "{pg_schema}".sessions WHERE id = $1 FOR UPDATE', session.id
            )
            blocked = asyncio.create_task(store.append(session.id, new_event("custom", {})))
            waiting = 0
            while not waiting:  # the append is blocked on the row lock (a condition, polled)
                waiting = await blocker.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'agentstore' AND wait_event_type = 'Lock'"
                )
                await asyncio.sleep(0.005)
            blocked.cancel()
            with pytest.raises(asyncio.CancelledError):
                await blocked
            await tx.rollback()
        finally:
            await blocker.close()
        # The connection was mid-statement: closed, and a fresh one serves the next call.
        # Whether the cancelled append committed is unknown to the caller; a retry of the
        # same event is safe either way.
        event = new_event("custom", {"n": 2})
        first = await store.append(session.id, event)
        again = await store.append(session.id, event)
        assert first.sequence_number == again.sequence_number
        assert [e.id for e in await store.get_events(session.id)][-1] == event.id


async def test_a_cut_notify_connection_is_reopened(
    pg_url: str, pg_database_url: str, pg_schema: str
) -> None:
    clock = await asyncpg.connect(pg_database_url)
    try:
        started = await clock.fetchval("SELECT now()")
    finally:
        await clock.close()
    async with agentstore.open(pg_url) as writer, agentstore.open(pg_url) as reader:
        session = await writer.create_session()
        seen: asyncio.Queue[int] = asyncio.Queue()

        async def follow() -> None:
            async for event in reader.stream(session.id, follow=True):
                seen.put_nowait(event.sequence_number)

        task = asyncio.create_task(follow())
        try:
            admin = await asyncpg.connect(pg_database_url)
            try:
                # Appends notify followed sessions only: once the follower holds its lease,
                # the first append opens the writer's NOTIFY connection.
                leased = None
                while leased is None:
                    leased = await admin.fetchval(
                        f'SELECT followed_until FROM "{pg_schema}".sessions WHERE id = $1',
                        session.id,
                    )
                    await asyncio.sleep(0.005)  # pacing of the check
                await writer.append(session.id, new_event("custom", {"n": 0}))
                assert await asyncio.wait_for(seen.get(), 5) == 1
                # The writer's NOTIFY connection: opened by that append (the follower may
                # have read event 1 before it was up: wait for it, a condition polled)
                # and started in this test (an earlier test's may still be exiting).
                cut = 0
                while not cut:
                    cut = await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query LIKE '%pg_notify%' AND pid <> pg_backend_pid() "
                        "AND datname = current_database() AND backend_start >= $1",
                        started,
                    )
                    await asyncio.sleep(0.005)  # pacing of the check
            finally:
                await admin.close()
            assert cut == 1
            # The follower's LISTEN is intact: only a NOTIFY sent again wakes it.
            await writer.append(session.id, new_event("custom", {"n": 1}))
            assert await asyncio.wait_for(seen.get(), 5) == 2
        finally:
            task.cancel()


async def _end_backends(admin: asyncpg.Connection, pids: list[int]) -> None:
    """Terminate `pids` and wait until the server has let them go (a condition, polled)."""
    await admin.fetchval("SELECT count(pg_terminate_backend(p)) FROM unnest($1::int[]) p", pids)
    left = len(pids)
    while left:
        await asyncio.sleep(0.005)  # pacing of the check
        left = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
        )


async def test_idle_connections_the_server_ended_are_not_handed_out(
    pg_url: str, pg_database_url: str
) -> None:
    # Ended while idle in the pool (a failover, pg_terminate_backend, an idle timeout):
    # the next call gets a fresh connection instead of an error about a dead one.
    backend = PostgresBackend(pg_url, pool_min_size=3, pool_max_size=3, notify=False)
    async with agentstore.open(backend) as store:
        session = await store.create_session()
        idle = list(backend.db._idle)
        assert len(idle) == 3
        admin = await asyncpg.connect(pg_database_url)
        try:
            await _end_backends(admin, [c.get_server_pid() for c in idle])
            while not all(c.is_closed() for c in idle):  # each socket reports its end
                await admin.fetchval("SELECT 1")  # a round trip: loop steps for the reads
        finally:
            await admin.close()
        stored = await store.append(session.id, new_event("custom", {"n": 1}))
        assert stored.sequence_number == 1


async def test_a_connection_caught_between_goodbye_and_end_is_not_used(
    pg_url: str, pg_database_url: str
) -> None:
    # What was behind asyncpg's "cannot switch to state 12; another operation (2) is in
    # progress" under a server restart: an idle connection has read the server's goodbye
    # (an ErrorResponse, which leaves asyncpg's protocol unable to start a statement) but
    # not yet the end of the stream, so it does not look closed. A statement on it fails
    # before anything is sent: the pool drops it and runs the statement on another.
    backend = PostgresBackend(pg_url, pool_min_size=1, pool_max_size=2, notify=False)
    async with agentstore.open(backend) as store:
        await store.create_session()
        (conn,) = backend.db._idle
        transport = conn._transport
        transport.pause_reading()  # the goodbye waits in the socket until we choose
        admin = await asyncpg.connect(pg_database_url)
        try:
            await _end_backends(admin, [conn.get_server_pid()])
        finally:
            await admin.close()
        transport.resume_reading()
        # asyncio reads a socket once per loop step: the goodbye in the first step after
        # this task yields, the end of the stream in the step after that one.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not conn.is_closed()  # the window is open
        assert await backend.db.fetchval("SELECT 41 + 1") == 42
        assert conn.is_closed()

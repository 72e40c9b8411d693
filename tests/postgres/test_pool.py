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


async def test_a_cut_notify_connection_is_reopened(pg_url: str, pg_database_url: str) -> None:
    async with agentstore.open(pg_url) as writer, agentstore.open(pg_url) as reader:
        session = await writer.create_session()
        await writer.append(session.id, new_event("custom", {"n": 0}))  # opens the NOTIFY one
        seen: asyncio.Queue[int] = asyncio.Queue()

        async def follow() -> None:
            async for event in reader.stream(session.id, follow=True):
                seen.put_nowait(event.sequence_number)

        task = asyncio.create_task(follow())
        try:
            assert await asyncio.wait_for(seen.get(), 5) == 1
            admin = await asyncpg.connect(pg_database_url)
            try:
                cut = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE '%pg_notify%' AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"
                )
            finally:
                await admin.close()
            assert cut == 1
            # The follower's LISTEN is intact: only a NOTIFY sent again wakes it.
            await writer.append(session.id, new_event("custom", {"n": 1}))
            assert await asyncio.wait_for(seen.get(), 5) == 2
        finally:
            task.cancel()

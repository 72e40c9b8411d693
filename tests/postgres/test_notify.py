"""`stream(follow=True)` is woken by LISTEN/NOTIFY: by another store at once, without
polling, and again after its listening connection was cut."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import PostgresBackend
from agentstore.errors import StoreLockedError


class CountingBackend(PostgresBackend):
    """The real backend, counting how often a waiter reads the session's end."""

    last_seq_calls = 0

    async def last_seq(self, session_id: str) -> int:
        self.last_seq_calls += 1
        return await super().last_seq(session_id)


async def _follow(store: agentstore.Store, sid: str, want: int, got: asyncio.Queue[float]) -> None:
    async for event in store.stream(sid, follow=True):
        got.put_nowait(time.monotonic())
        if event.sequence_number == want:
            return


async def test_follower_woken_by_another_store_without_polling(pg_url: str) -> None:
    follower_backend = CountingBackend(pg_url)
    async with agentstore.open(pg_url) as writer, agentstore.open(follower_backend) as reader:
        session = await writer.create_session()
        got: asyncio.Queue[float] = asyncio.Queue()
        follow = asyncio.create_task(_follow(reader, session.id, 3, got))
        await asyncio.sleep(0.5)  # the follower sits idle (not a synchronisation)
        # Idle for 0.5 s: polling from 10 ms with back-off would have read the end 6 times.
        assert follower_backend.last_seq_calls <= 1
        latencies = []
        for n in range(3):
            sent = time.monotonic()
            await writer.append(session.id, new_event("custom", {"n": n}))
            latencies.append(await asyncio.wait_for(got.get(), 5) - sent)
        await asyncio.wait_for(follow, 5)
        assert max(latencies) < 1.0  # milliseconds in practice; generous on a busy machine


async def test_follower_resumes_after_its_listen_connection_is_cut(
    pg_url: str, pg_database_url: str
) -> None:
    async with agentstore.open(pg_url) as writer, agentstore.open(pg_url) as reader:
        session = await writer.create_session()
        await writer.append(session.id, new_event("custom", {"n": 0}))
        seen: list[int] = []
        first = asyncio.Event()

        async def follow() -> None:
            async for event in reader.stream(session.id, follow=True):
                seen.append(event.sequence_number)
                first.set()
                if event.sequence_number == 4:
                    return

        task = asyncio.create_task(follow())
        await asyncio.wait_for(first.wait(), 5)
        admin = await asyncpg.connect(pg_database_url)
        try:
            listening = 0
            while not listening:  # the LISTEN is in place once the follower waits
                listening = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                )
                await asyncio.sleep(0.005)
        finally:
            await admin.close()
        # Appended while the follower has no listener: it re-reads when it reconnects.
        for n in range(1, 4):
            await writer.append(session.id, new_event("custom", {"n": n}))
        await asyncio.wait_for(task, 10)
        assert seen == [1, 2, 3, 4]


async def test_read_only_store_follows_and_refuses_writes(pg_url: str) -> None:
    async with agentstore.open(pg_url) as writer:
        session = await writer.create_session()
        async with agentstore.open(pg_url, read_only=True) as reader:
            got: asyncio.Queue[float] = asyncio.Queue()
            follow = asyncio.create_task(_follow(reader, session.id, 1, got))
            await writer.append(session.id, new_event("custom", {}))
            await asyncio.wait_for(follow, 5)
            with pytest.raises(StoreLockedError, match="read-only"):
                await reader.append(session.id, new_event("custom", {}))


async def test_notification_of_an_odd_session_id_used_directly(
    pg_url: str, pg_database_url: str
) -> None:
    # The Store only lets [A-Za-z0-9._-] through; a backend used directly still quotes.
    from datetime import UTC, datetime

    from agentstore.backends.postgres.notifications import channel_name
    from agentstore.session import Session
    from agentstore.store.validate import prepare

    odd = "it's; SELECT 1 \\"
    writer = PostgresBackend(pg_url)
    await writer.open()
    listener = await asyncpg.connect(pg_database_url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(
        channel_name(writer.options.schema), lambda *args: heard.put_nowait(args[3])
    )
    try:
        now = datetime.now(UTC)
        await writer.create_session(Session(id=odd, created_at=now, updated_at=now))
        # Appends notify followed sessions only: take a follower's lease, as it would.
        await writer.db.execute(
            f'UPDATE "{writer.options.schema}".sessions '
            "SET followed_until = now() + interval '1 minute' WHERE id = $1",
            odd,
        )
        await writer.append(odd, [prepare(new_event("custom", {}))], None)
        assert await asyncio.wait_for(heard.get(), 5) == f"1 {odd}"
    finally:
        await listener.close()
        await writer.close()

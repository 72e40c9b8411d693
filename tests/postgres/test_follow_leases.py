"""Follower leases: appends send a NOTIFY only for sessions a follower holds a lease on, and
a follower never misses an append for it (taken before or after, renewed, lapsed, refused)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import PostgresBackend
from agentstore.backends.postgres import schema as pg_schema_module
from agentstore.backends.postgres.notifications import Leases, channel_name
from agentstore.backends.postgres.schema import current_version
from agentstore.store.validate import prepare
from tests.postgres.old_rows import insert_one_event_session


class ShortLeases(PostgresBackend):
    """The real backend with leases short enough to watch them renew and lapse."""

    def __init__(self, url: str, lease: float, renew_after: float) -> None:
        super().__init__(url)
        self._leases = Leases(self.options.schema, lease=lease, renew_after=renew_after)


async def _lease_of(conn: asyncpg.Connection, schema: str, sid: str) -> Any:
    return await conn.fetchval(f'SELECT followed_until FROM "{schema}".sessions WHERE id = $1', sid)


async def _until_leased(conn: asyncpg.Connection, schema: str, sid: str, than: Any = None) -> Any:
    """Watch the session row until a follower's lease is on it (newer than `than`)."""
    while True:
        lease = await _lease_of(conn, schema, sid)
        if lease is not None and (than is None or lease > than):
            return lease
        await asyncio.sleep(0.01)


async def _next_event(store: agentstore.Store, sid: str, after: int) -> int:
    async for event in store.stream(sid, from_seq=after + 1, follow=True):
        return event.sequence_number
    raise AssertionError("the stream ended")


async def _listen(url: str, schema: str) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    conn = await asyncpg.connect(url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await conn.add_listener(channel_name(schema), lambda *args: heard.put_nowait(args[3]))
    return conn, heard


@pytest.fixture
async def admin(pg_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_database_url)
    yield conn
    await conn.close()


async def test_only_followed_sessions_are_notified(
    pg_url: str, pg_database_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    async with agentstore.open(pg_url) as writer, agentstore.open(pg_url) as reader:
        alone = (await writer.create_session()).id
        followed = (await writer.create_session()).id
        listener, heard = await _listen(pg_database_url, pg_schema)
        try:
            follow = asyncio.create_task(_next_event(reader, followed, 0))
            await _until_leased(admin, pg_schema, followed)
            assert await _lease_of(admin, pg_schema, alone) is None
            await writer.append(alone, new_event("custom", {}))
            await writer.append(followed, new_event("custom", {}))
            assert await asyncio.wait_for(follow, 5) == 1
            # One sender, in order: a NOTIFY for `alone` would have come first.
            assert await asyncio.wait_for(heard.get(), 5) == f"1 {followed}"
        finally:
            await listener.close()


async def test_every_append_path_notifies_a_follower(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    async with agentstore.open(pg_url) as writer, agentstore.open(pg_url) as reader:
        sid = (await writer.create_session()).id
        others = [(await writer.create_session()).id for _ in range(2)]
        first = new_event("custom", {})
        await writer.append(sid, first)
        follow = asyncio.create_task(_next_event(reader, sid, 1))
        await _until_leased(admin, pg_schema, sid)
        await writer.append_many(sid, [new_event("custom", {}), new_event("custom", {})])
        assert await asyncio.wait_for(follow, 5) == 2  # the one-statement append
        follow = asyncio.create_task(_next_event(reader, sid, 3))
        await writer.append_many(sid, [first, new_event("custom", {})])  # a partial retry
        assert await asyncio.wait_for(follow, 5) == 4  # the locked append
        follow = asyncio.create_task(_next_event(reader, sid, 4))
        backend = writer.backend
        assert isinstance(backend, PostgresBackend)
        shared = backend.shared_flights
        # The first flies alone; the two queued meanwhile share the next statement.
        await asyncio.gather(
            writer.append(others[0], new_event("custom", {})),
            writer.append(others[1], new_event("custom", {})),
            writer.append(sid, new_event("custom", {})),
        )
        assert backend.shared_flights == shared + 1
        assert await asyncio.wait_for(follow, 5) == 5


async def test_lease_is_renewed_while_following(
    pg_url: str, pg_database_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    backend = ShortLeases(pg_url, lease=1.0, renew_after=0.2)
    async with agentstore.open(pg_url) as writer, agentstore.open(backend) as reader:
        sid = (await writer.create_session()).id
        follow = asyncio.create_task(_next_event(reader, sid, 0))
        first = await _until_leased(admin, pg_schema, sid)
        # Wait out the first lease (time passing, not a race).
        await asyncio.sleep((first - await admin.fetchval("SELECT now()")).total_seconds() + 0.1)
        table = f'"{pg_schema}".sessions'
        assert await admin.fetchval(
            f"SELECT followed_until > now() FROM {table} WHERE id = $1", sid
        )  # renewed meanwhile
        listener, heard = await _listen(pg_database_url, pg_schema)
        try:
            await writer.append(sid, new_event("custom", {}))
            assert await asyncio.wait_for(follow, 5) == 1
            assert await asyncio.wait_for(heard.get(), 5) == f"1 {sid}"
        finally:
            await listener.close()


async def test_lapsed_lease_costs_latency_not_events(
    pg_url: str, pg_database_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    backend = ShortLeases(pg_url, lease=60.0, renew_after=0.5)
    table = f'"{pg_schema}".sessions'
    async with agentstore.open(pg_url) as writer, agentstore.open(backend) as reader:
        sid = (await writer.create_session()).id
        other = (await writer.create_session()).id
        follow = asyncio.create_task(_next_event(reader, sid, 0))
        await _until_leased(admin, pg_schema, sid)
        # The follower stalls past its lease (as a blocked event loop would): the append
        # sends nothing, and the follower learns of it when it renews.
        lapse = f"UPDATE {table} SET followed_until = now() - interval '1 second' WHERE id = $1"
        await admin.execute(lapse, sid)
        listener, heard = await _listen(pg_database_url, pg_schema)
        try:
            await writer.append(sid, new_event("custom", {}))
            assert await asyncio.wait_for(follow, 5) == 1
            lease = f"UPDATE {table} SET followed_until = now() + interval '1 minute' WHERE id = $1"
            await admin.execute(lease, other)
            await writer.append(other, new_event("custom", {}))
            # One sender, in order: a NOTIFY for the lapsed session would have come first.
            assert await asyncio.wait_for(heard.get(), 5) == f"1 {other}"
        finally:
            await listener.close()


async def test_follower_whose_role_may_not_update_polls(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    role = f"reader_{secrets.token_hex(4)}"
    async with agentstore.open(pg_url) as writer:
        sid = (await writer.create_session()).id
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            await admin.execute(
                f'GRANT USAGE ON SCHEMA "{pg_schema}" TO {role}; '
                f'GRANT SELECT ON ALL TABLES IN SCHEMA "{pg_schema}" TO {role}'
            )
            parts = urlsplit(pg_url)
            url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
            async with agentstore.open(f"{url}&migrate=false", read_only=True) as reader:
                backend = reader.backend
                assert isinstance(backend, PostgresBackend)
                follow = asyncio.create_task(_next_event(reader, sid, 0))
                while True:  # until it waits, refused its lease
                    if backend._leases.refused is not None:
                        break
                    await asyncio.sleep(0.01)
                await writer.append(sid, new_event("custom", {}))
                assert await asyncio.wait_for(follow, 5) == 1
        finally:
            await admin.execute(
                f'REVOKE ALL ON ALL TABLES IN SCHEMA "{pg_schema}" FROM {role}; '
                f'REVOKE USAGE ON SCHEMA "{pg_schema}" FROM {role}; DROP ROLE {role}'
            )


async def test_schema_of_version_1_is_upgraded_with_its_data(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    with monkeypatch.context() as old:
        old.setattr(pg_schema_module, "MIGRATIONS", pg_schema_module.MIGRATIONS[:1])
        before = PostgresBackend(pg_url)
        await before.open()  # migrates to version 1 only
        await before.close()
    # A session with an event, as version 1's code wrote them (today's statements name
    # columns of later steps).
    event = prepare(new_event("custom", {"n": 1}))
    await insert_one_event_session(admin, pg_schema, "s1", event, now)
    columns = await admin.fetchval(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = $1 AND column_name = 'followed_until'",
        pg_schema,
    )
    assert columns == 0
    async with agentstore.open(pg_url) as writer, agentstore.open(pg_url) as reader:
        assert [e.payload for e in await writer.get_events("s1")] == [{"n": 1}]
        follow = asyncio.create_task(_next_event(reader, "s1", 1))
        await _until_leased(admin, pg_schema, "s1")
        await writer.append("s1", new_event("custom", {"n": 2}))
        assert await asyncio.wait_for(follow, 5) == 2
    versions = await admin.fetch(f'SELECT version FROM "{pg_schema}".schema_migrations')
    assert sorted(r["version"] for r in versions) == list(range(1, current_version() + 1))


class CountingBackend(PostgresBackend):
    """The real backend, counting its reads of a session's end."""

    last_seq_calls = 0

    async def last_seq(self, session_id: str) -> int:
        self.last_seq_calls += 1
        return await super().last_seq(session_id)


async def test_a_notified_follower_does_not_read_the_sessions_end_again(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    follower = CountingBackend(pg_url)
    async with agentstore.open(pg_url) as writer, agentstore.open(follower) as reader:
        sid = (await writer.create_session()).id
        got: asyncio.Queue[int] = asyncio.Queue()

        async def follow() -> None:
            async for event in reader.stream(sid, follow=True):
                got.put_nowait(event.sequence_number)
                if event.sequence_number == 5:
                    return

        task = asyncio.create_task(follow())
        await _until_leased(admin, pg_schema, sid)
        for n in range(1, 6):
            await writer.append(sid, new_event("custom", {"n": n}))
            assert await asyncio.wait_for(got.get(), 5) == n
        await asyncio.wait_for(task, 5)
    # One read before each wait (an append may have come meanwhile), none after the
    # notification that ends it: it tells the new end (two reads per append before).
    assert follower.last_seq_calls <= 5

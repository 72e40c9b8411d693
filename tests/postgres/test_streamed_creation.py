"""Fork, import and copy into PostgreSQL write a new session page by page, in one
transaction: never held whole in memory, whole or absent once done."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

import agentstore
from agentstore import Event, InvalidInputError, new_event
from tests.cli_process import agentstore_cli_peak

N = 3000  # three pages of an import


def _events(count: int) -> list[Event]:
    return [new_event("custom", {"i": i}) for i in range(count)]


async def _exported(store: agentstore.Store) -> list[Event]:
    """The events of a session "src" of N events, which is then deleted (to import again)."""
    source = await store.create_session(session_id="src")
    await store.append_many(source.id, _events(N))
    exported = await store.get_events(source.id)
    await store.delete_session(source.id)
    return exported


async def _relation_bytes(url: str, schema: str) -> int:
    conn = await asyncpg.connect(url.split("?")[0])
    try:
        size: int = await conn.fetchval(f"SELECT pg_relation_size('\"{schema}\".events')")
        return size
    finally:
        await conn.close()


async def test_an_import_is_written_while_its_events_are_still_being_read(
    pg_url: str, pg_schema: str
) -> None:
    async with agentstore.open(pg_url) as store:
        exported = await _exported(store)
        async with agentstore.open(pg_url) as fresh:
            await fresh.create_session(session_id="warm")  # the schema exists
        # Vacuumed empty: what the import writes is all the table holds.
        conn = await asyncpg.connect(pg_url.split("?")[0])
        await conn.execute(f'VACUUM FULL "{pg_schema}".events')
        await conn.close()
        before = await _relation_bytes(pg_url, pg_schema)
        seen: list[int] = []

        async def events() -> AsyncIterator[Event]:
            for event in exported:
                if event.sequence_number == 2500:
                    # The first two pages are in the (still uncommitted) transaction.
                    seen.append(await _relation_bytes(pg_url, pg_schema))
                yield event

        created = await store.import_session(
            {"id": "src", "created_at": datetime.now(UTC)}, events()
        )
        assert created.event_count == N
        assert seen and seen[0] > before
        got = await store.get_events("src")
        assert [(e.id, e.sequence_number, e.payload) for e in got] == [
            (e.id, e.sequence_number, e.payload) for e in exported
        ]
        # The head is the import's last event: the next append follows it.
        appended = await store.append("src", new_event("custom", {"i": "next"}))
        assert appended.sequence_number == N + 1


async def test_a_failed_import_leaves_nothing_behind(pg_url: str) -> None:
    async with agentstore.open(pg_url) as store:
        exported = await _exported(store)

        def events() -> Iterator[Event]:
            for event in exported:
                if event.sequence_number == 2500:  # after two pages went to the server
                    assert event.timestamp is not None
                    yield event.model_copy(
                        update={"timestamp": event.timestamp - timedelta(days=1)}
                    )
                else:
                    yield event

        with pytest.raises(InvalidInputError, match="goes back in time"):
            await store.import_session({"id": "src", "created_at": datetime.now(UTC)}, events())
        assert [s.id for s in await store.list_sessions()] == []
        conn = await asyncpg.connect(pg_url.split("?")[0])
        schema = pg_url.split("schema=")[1]
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".events') == 0
        await conn.close()


@pytest.mark.parametrize("pool", [10, 1])
async def test_a_fork_of_many_pages(pg_url: str, pool: int) -> None:
    # With one connection the fork's reads would wait for the transaction's: it gathers.
    async with agentstore.open(f"{pg_url}&pool_max_size={pool}&pool_min_size=1") as store:
        source = await store.create_session()
        await store.append_many(source.id, _events(N))
        fork = await store.fork(source.id, at_seq=2600)
        assert fork.event_count == 2600
        mine = await store.get_events(fork.id)
        theirs = await store.get_events(source.id)
        assert [e.payload for e in mine] == [e.payload for e in theirs[:2600]]


async def test_an_id_repeated_pages_later_is_refused(pg_url: str) -> None:
    # An import keeps the numbers it is given: a repeated id (which an append would skip,
    # renumbering what follows) is refused, though its first use went out pages before.
    async with agentstore.open(pg_url) as store:
        exported = await _exported(store)
        exported[2100] = exported[2100].model_copy(update={"id": exported[50].id})
        session = {"id": "src", "created_at": datetime.now(UTC)}
        with pytest.raises(InvalidInputError, match=r"event 2101 .* repeats the id of event 51"):
            await store.import_session(session, exported)
        assert await store.list_sessions() == []


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
async def test_a_copy_holds_a_page_of_a_session_not_all_of_it(
    tmp_path: Path, pg_database_url: str
) -> None:
    # 40,000 events gathered took about 280 MB more than 4,000; read and written as they
    # go, the same.
    peaks = []
    for count in (4_000, 40_000):
        data = tmp_path / f"d{count}"
        async with agentstore.open(data, durability="flush") as store:
            sid = (await store.create_session()).id
            for _ in range(count // 1000):
                await store.append_many(sid, _events(1000))
        copied, peak = agentstore_cli_peak("copy", data, f"{pg_database_url}?schema=copy_{count}")
        assert copied.returncode == 0, copied.stderr
        peaks.append(peak)
    assert peaks[1] - peaks[0] < 60, peaks

"""Snapshots on PostgreSQL wait for the next append to their session and are written in its
statement (`agentstore/backends/postgres/snapshots.py`): alone only when no append comes in
time, when they are large, or when the store closes. Never onto a session deleted and made
again, never an older one over a newer, never lost by an append that wrote nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg
import pytest

import agentstore
from agentstore import Store, new_event
from agentstore.backends.base import SnapshotRecord
from agentstore.backends.postgres import snapshots
from agentstore.errors import ConcurrencyError
from tests.postgres.snapshot_table import stored_versions


def _events(n: int) -> list[agentstore.Event]:
    return [new_event("tool_result", {"i": i}) for i in range(n)]


async def _written(
    pg_url: str, schema: str, session_id: str, versions: list[int], why: str
) -> None:
    """Wait (10 s at most) until the table holds these snapshot versions: a write the store
    makes in the background, on its timer or at once, not in any call awaited here."""
    deadline = time.monotonic() + 10
    while await stored_versions(pg_url, schema, session_id) != versions:
        assert time.monotonic() < deadline, why
        await asyncio.sleep(0.02)


async def _snapshot_due(store: Store, session_id: str, n: int) -> None:
    """Append `n` events (a snapshot falls due at `n`) and let the store hand it over."""
    await store.append_many(session_id, _events(n))
    await store.get_state(session_id)  # waits for the store's snapshot write


@pytest.mark.usefixtures("no_timer")
async def test_the_next_append_writes_the_snapshot(pg_url: str, pg_schema: str) -> None:
    async with agentstore.open(pg_url, snapshot_interval=10) as store:
        session = await store.create_session()
        await _snapshot_due(store, session.id, 10)
        assert await stored_versions(pg_url, pg_schema, session.id) == []  # waiting, no statement
        await store.append(session.id, new_event("tool_result", {"i": 10}))
        assert await stored_versions(pg_url, pg_schema, session.id) == [10]
        await _snapshot_due(store, session.id, 9)  # 20
        await store.append_many(session.id, _events(3))
        assert await stored_versions(pg_url, pg_schema, session.id) == [20]
        expected = await store.get_state(session.id)
    async with agentstore.open(pg_url, cache_size=0) as other:
        assert (await other.get_state(session.id)).model_dump() == expected.model_dump()


async def test_a_snapshot_no_append_takes_is_written_alone(
    pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "RIDE_WAIT", 0.05)
    async with agentstore.open(pg_url, snapshot_interval=10) as store:
        session = await store.create_session()
        await _snapshot_due(store, session.id, 10)
        await _written(
            pg_url, pg_schema, session.id, [10], "the waiting snapshot was never written"
        )


@pytest.mark.usefixtures("no_timer")
async def test_a_large_snapshot_is_written_at_once(
    pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "RIDE_MAX", 16)
    async with agentstore.open(pg_url, snapshot_interval=10) as store:
        session = await store.create_session()
        await _snapshot_due(store, session.id, 10)
        await _written(pg_url, pg_schema, session.id, [10], "the large snapshot waited")


@pytest.mark.usefixtures("no_timer")
async def test_closing_writes_what_waits(pg_url: str, pg_schema: str) -> None:
    async with agentstore.open(pg_url, snapshot_interval=10) as store:
        session = await store.create_session()
        await _snapshot_due(store, session.id, 15)
        state = await store.get_state(session.id)
    assert await stored_versions(pg_url, pg_schema, session.id) == [15]
    async with agentstore.open(pg_url, cache_size=0) as again:
        assert (await again.get_state(session.id)).model_dump() == state.model_dump()


@pytest.mark.usefixtures("no_timer")
async def test_a_store_reads_its_waiting_snapshot(pg_url: str) -> None:
    async with agentstore.open(pg_url, snapshot_interval=0) as store:
        session = await store.create_session()
        await store.append_many(session.id, _events(3))
        record = SnapshotRecord(session.id, 3, {"x": 1}, "r", datetime.now(UTC))
        await store.backend.save_snapshot(record)
        assert await store.backend.load_snapshot(session.id, "r") == record
        _, loaded = await store.backend.load_session_and_snapshot(session.id, "r")
        assert loaded == record


@pytest.mark.usefixtures("no_timer")
async def test_a_deleted_session_made_again_gets_no_waiting_snapshot(
    pg_url: str, pg_schema: str
) -> None:
    async with agentstore.open(pg_url, snapshot_interval=10) as store:
        session = await store.create_session(session_id="again")
        await _snapshot_due(store, session.id, 10)
        await store.delete_session(session.id)
        await store.create_session(session_id="again")
        await store.append(session.id, new_event("tool_result", {"i": 0}))
    assert await stored_versions(pg_url, pg_schema, "again") == []
    async with agentstore.open(pg_url, cache_size=0) as other:
        assert (await other.get_state("again")).event_count == 1


@pytest.mark.usefixtures("no_timer")
async def test_an_append_that_writes_nothing_leaves_the_snapshot_waiting(
    pg_url: str, pg_schema: str
) -> None:
    async with agentstore.open(pg_url, snapshot_interval=10) as store:
        session = await store.create_session()
        await _snapshot_due(store, session.id, 10)
        with pytest.raises(ConcurrencyError):  # matches no session row: rolled back whole
            await store.append(session.id, new_event("tool_result", {}), expected_seq=3)
        retry = (await store.get_events(session.id))[-1]
        assert await store.append(session.id, retry) == retry  # an id stored: rolled back
        assert await stored_versions(pg_url, pg_schema, session.id) == []
    assert await stored_versions(pg_url, pg_schema, session.id) == [10]


@pytest.mark.usefixtures("no_timer")
async def test_a_newer_snapshot_replaces_a_waiting_older_one(pg_url: str, pg_schema: str) -> None:
    async with agentstore.open(pg_url, snapshot_interval=0) as store:
        session = await store.create_session()
        await store.append_many(session.id, _events(10))
        for version in (5, 10):
            state = {"session_id": session.id, "version": version}
            await store.backend.save_snapshot(
                SnapshotRecord(session.id, version, state, "r", datetime.now(UTC))
            )
        await store.append(session.id, new_event("tool_result", {}))
        assert await stored_versions(pg_url, pg_schema, session.id) == [10]


async def _refuse_snapshots(pg_url: str, schema: str) -> None:
    """Make the server refuse every snapshot write of the schema (a trigger that raises)."""
    conn = await asyncpg.connect(pg_url.split("?")[0])
    try:
        await conn.execute(
            f'CREATE FUNCTION "{schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS '
            "$$ BEGIN RAISE EXCEPTION 'snapshots refused'; END $$; "
            f'CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON "{schema}".snapshots '
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse()'
        )
    finally:
        await conn.close()


@pytest.mark.usefixtures("no_timer")
@pytest.mark.parametrize("expected", [False, True])
async def test_a_snapshot_the_server_refuses_never_fails_the_append_carrying_it(
    pg_url: str, pg_schema: str, expected: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async with agentstore.open(pg_url, snapshot_interval=10) as store:
        session = await store.create_session()
        await _refuse_snapshots(pg_url, pg_schema)
        await _snapshot_due(store, session.id, 10)
        for i in range(10, 13):  # the first carries the snapshot; the others carry none
            stored = await store.append(
                session.id,
                new_event("tool_result", {"i": i}),
                expected_seq=i if expected else None,
            )
            assert stored.sequence_number == i + 1
        assert await stored_versions(pg_url, pg_schema, session.id) == []
        assert "snapshots refused" in caplog.text  # said, not raised
    async with agentstore.open(pg_url) as other:
        events = await other.replay(session.id)
    assert [e.payload["i"] for e in events] == list(range(13))

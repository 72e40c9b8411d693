"""Review 7: snapshots that wait for an append (agentstore/backends/postgres/snapshots.py)
against a delete while one is being written alone, and against a second store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import snapshots
from tests.postgres.snapshot_table import connect, stored_versions


@asynccontextmanager
async def _snapshot_writes_held(pg_url: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """Every snapshot write of the schema waits in the server (a trigger on an advisory
    lock this connection holds) until the block ends."""
    conn = await connect(pg_url)
    try:
        await conn.execute(
            f'CREATE FUNCTION "{schema}".hold() RETURNS trigger LANGUAGE plpgsql AS '
            "$$ BEGIN PERFORM pg_advisory_xact_lock_shared(7707); RETURN NEW; END $$; "
            f'CREATE TRIGGER hold BEFORE INSERT OR UPDATE ON "{schema}".snapshots '
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".hold()'
        )
        await conn.execute("SELECT pg_advisory_lock(7707)")
        try:
            yield conn
        finally:
            await conn.execute("SELECT pg_advisory_unlock(7707)")
    finally:
        await conn.close()


async def _until_a_write_is_held(conn: asyncpg.Connection) -> None:
    """Wait until a snapshot statement waits on the advisory lock."""
    deadline = time.monotonic() + 10
    while not await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND wait_event = 'advisory' AND datname = current_database()"
    ):
        assert time.monotonic() < deadline, "the snapshot write never reached the server"
        await asyncio.sleep(0.01)  # polling the server's own view, not timing a race


async def _make_again(store: agentstore.Store, sid: str) -> None:
    await store.create_session(session_id=sid)
    await store.append_many(sid, [new_event("note", {"j": j}) for j in range(12)])


async def test_a_session_deleted_while_its_snapshot_is_written_alone_never_gets_it(
    pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store waits for its own snapshot write before a delete (Store._delete: settled);
    # the backend's write alone (the timer's, or a large one at once) must be waited for
    # too, or it lands on the session made again with the same id, and the store reads
    # the deleted session's state back in the meantime.
    monkeypatch.setattr(snapshots, "RIDE_MAX", 16)  # written alone at once
    sid = "again"
    async with (
        agentstore.open(pg_url, snapshot_interval=10) as a,
        agentstore.open(pg_url, snapshot_interval=0) as b,
    ):
        await a.create_session(session_id=sid)
        async with _snapshot_writes_held(pg_url, pg_schema) as conn:
            await a.append_many(sid, [new_event("tool_result", {"i": i}) for i in range(10)])
            await _until_a_write_is_held(conn)
            deleting = asyncio.create_task(a.delete_session(sid))
            # A delete that does not wait for the write ends while it is held.
            await asyncio.wait({deleting}, timeout=2.0)
            made_again = deleting.done()
            if made_again:
                await _make_again(b, sid)
                state = await a.get_state(sid)
                assert "tool_result" not in state.data, "read the deleted session's snapshot"
        await deleting
        if not made_again:
            await _make_again(b, sid)
        assert "tool_result" not in (await a.get_state(sid)).data
    async with agentstore.open(pg_url, cache_size=0) as other:
        state = await other.get_state(sid)
    assert "tool_result" not in state.data, "the deleted session's snapshot landed on it"
    assert await stored_versions(pg_url, pg_schema, sid) == []


@pytest.mark.usefixtures("no_timer")
@pytest.mark.parametrize("written_by", ["append", "close"])
async def test_a_waiting_snapshot_never_lands_on_a_session_another_store_made_again(
    pg_url: str, pg_schema: str, written_by: str
) -> None:
    # Another process resets a conversation (delete, create with the same id) while this
    # one's snapshot of the old one waits for its next append.
    sid = "reset"
    async with agentstore.open(pg_url, snapshot_interval=10) as a:
        await a.create_session(session_id=sid)
        await a.append_many(sid, [new_event("tool_result", {"i": i}) for i in range(10)])
        await a.get_state(sid)  # the store handed its snapshot to the backend: it waits
        async with agentstore.open(pg_url, snapshot_interval=0) as b:
            await b.delete_session(sid)
            await _make_again(b, sid)
            if written_by == "close":  # a writes its snapshot alone as it closes
                await b.append(sid, new_event("note", {"j": 12}))
        if written_by == "append":  # to the new session, carrying the snapshot
            await a.append(sid, new_event("note", {"j": 12}))
    assert await stored_versions(pg_url, pg_schema, sid) == []
    async with agentstore.open(pg_url, cache_size=0) as other:
        state = await other.get_state(sid)
    assert state.data == {"note": {"j": 12}}


@pytest.mark.usefixtures("no_timer")
@pytest.mark.parametrize("written_by", ["append", "close"])
async def test_a_waiting_snapshot_never_lands_over_a_newer_one_of_another_store(
    pg_url: str, pg_schema: str, written_by: str
) -> None:
    sid = "shared"
    async with agentstore.open(pg_url, snapshot_interval=10) as a:
        await a.create_session(session_id=sid)
        await a.append_many(sid, [new_event("tool_result", {"i": i}) for i in range(10)])
        await a.get_state(sid)  # its snapshot at 10 waits
        async with agentstore.open(pg_url, snapshot_interval=10) as b:
            await b.append_many(sid, [new_event("tool_result", {"i": i}) for i in range(10)])
            await b.get_state(sid)
        assert await stored_versions(pg_url, pg_schema, sid) == [20]  # b's, written at its close
        if written_by == "append":
            await a.append(sid, new_event("note", {}))  # carries the one at 10
    # (or a wrote it alone as it closed)
    assert await stored_versions(pg_url, pg_schema, sid) == [20]


@pytest.mark.usefixtures("no_timer")
async def test_a_store_never_reads_its_waiting_snapshot_into_a_session_made_again(
    pg_url: str,
) -> None:
    # Another process resets the conversation while this store's snapshot of the old one
    # waits; this store, folding cold, must not start the new one from it.
    sid = "reset"
    async with agentstore.open(pg_url, snapshot_interval=10, cache_size=0) as a:
        await a.create_session(session_id=sid)
        await a.append_many(sid, [new_event("tool_result", {"i": i}) for i in range(10)])
        await a.get_state(sid)  # its snapshot at 10 waits
        async with agentstore.open(pg_url, snapshot_interval=0) as b:
            await b.delete_session(sid)
            await _make_again(b, sid)
        state = await a.get_state(sid)
        assert state.data == {"note": {"j": 11}}

"""Review 9d: a batch mark edited by hand in PostgreSQL (`events.batch_end`) never makes a
copy to a data directory write a marked last line (which the directory's recovery would cut
as a torn tail): an import refuses the session whole, an extension marks its own batches."""

from __future__ import annotations

from pathlib import Path

import asyncpg

import agentstore
from agentstore import new_event
from agentstore_cli.copy import _copy_one
from tests.cli_process import agentstore_cli as _cli


async def _mark(database_url: str, schema: str, sid: str, seq: int, mark: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f'UPDATE "{schema}".events SET batch_end = $3 WHERE session_id = $1 AND seq = $2',
            sid,
            seq,
            mark,
        )
    finally:
        await conn.close()


async def _reopened(data: Path, sid: str) -> int:
    """The session's events once a writer has opened the directory (recovery ran)."""
    async with agentstore.open(data) as store:
        await store.update_session(sid, name="reopened")
        return (await store.get_session(sid)).event_count


async def test_a_marked_last_row_is_not_copied_as_a_marked_last_line(
    pg_url: str, pg_database_url: str, pg_schema: str, tmp_path: Path
) -> None:
    dst = tmp_path / "dst"
    async with agentstore.open(pg_url) as store:
        bad = (await store.create_session(name="bad")).id
        good = (await store.create_session(name="good")).id
        for sid in (bad, good):
            await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(3)])
    await _mark(pg_database_url, pg_schema, bad, 3, 4)
    out = _cli("copy", pg_url, dst)
    assert out.returncode == 1
    assert f"session {bad} not copied" in out.stderr
    assert "event 3 ends a batch and is marked 4" in out.stderr
    assert not (dst / "events" / f"{bad}.jsonl").exists()
    assert await _reopened(dst, good) == 3


async def test_an_extension_marks_its_own_batches(
    pg_url: str, pg_database_url: str, pg_schema: str, tmp_path: Path
) -> None:
    dst = tmp_path / "dst"
    async with agentstore.open(pg_url) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(3)])
    assert _cli("copy", pg_url, dst).returncode == 0
    async with agentstore.open(pg_url) as store:
        await store.append_many(sid, [new_event("custom", {"m": n}) for n in range(2)])
    await _mark(pg_database_url, pg_schema, sid, 5, 9)  # the new last row, marked beyond
    out = _cli("copy", pg_url, dst)
    assert out.returncode == 0, out.stderr
    assert await _reopened(dst, sid) == 5
    assert _cli("verify", "--data-dir", dst).returncode == 0
    async with agentstore.open(dst) as store:
        assert await store.backend.batch_marks(sid) == {1: 3, 2: 3, 4: 5}


async def test_a_copy_through_a_lagging_read_replica(
    pg_url: str, pg_database_url: str, pg_schema: str, tmp_path: Path
) -> None:
    # The "replica": another database holding the session as it was a batch ago (what a
    # replica that has not replayed the last batch yet serves). SRC's sessions and marks
    # come from the primary, its events from the replica.
    replica_db = f"r9d_replica_{pg_schema}"
    admin = await asyncpg.connect(pg_database_url)
    await admin.execute(f'CREATE DATABASE "{replica_db}"')
    try:
        replica_url = pg_database_url.rsplit("/", 1)[0] + f"/{replica_db}?schema={pg_schema}"
        async with agentstore.open(pg_url) as primary, agentstore.open(replica_url) as replica:
            sid = (await primary.create_session()).id
            await primary.append_many(sid, [new_event("custom", {"n": n}) for n in range(3)])
            events = await primary.get_events(sid)
            await replica.import_session(
                await primary.get_session(sid), events, batch_marks={1: 3, 2: 3}
            )
            await primary.append_many(sid, [new_event("custom", {"m": n}) for n in range(2)])
        dst = tmp_path / "dst"
        # `agentstore copy` takes no replica; a program copying with `_copy_one` (or a
        # copy given --read-store one day) reads through one. Before the fix: 'batch marks
        # of events beyond the import: [4]', and the session was not copied.
        src = agentstore.open(pg_url, read_url=replica_url, read_only=True)
        async with src, agentstore.open(dst) as target:
            found = await src.get_session(sid)
            assert await _copy_one(src, target, found) == ("copied", 3)  # what the replica has
        assert await _reopened(dst, sid) == 3
        # The replica as SRC's own URL: everything from the replica, consistent.
        assert _cli("copy", replica_url, tmp_path / "from-replica").returncode == 0
        assert _cli("copy", pg_url, dst).returncode == 0  # the replica caught up
        async with agentstore.open(dst) as store:
            assert await store.backend.batch_marks(sid) == {1: 3, 2: 3, 4: 5}
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{replica_db}" WITH (FORCE)')
        await admin.close()

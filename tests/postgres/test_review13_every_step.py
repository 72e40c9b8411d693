"""A schema left at each older step, holding events written as that step's agentstore wrote
them, is migrated to the current one by opening a store: its events replay exactly, the
log goes on from them, and `events_jsonb` reads old and new rows alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import PostgresBackend
from agentstore.backends.postgres import schema as pg_schema_module
from agentstore.backends.postgres.schema import current_version
from agentstore.store.validate import prepare
from tests.postgres.old_rows import insert_one_event_session, schema_at_version


@pytest.mark.parametrize("step", range(1, current_version()))
async def test_a_schema_at_an_older_step_migrates_with_its_events(
    pg_url: str,
    pg_schema: str,
    admin: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    step: int,
) -> None:
    await schema_at_version(pg_url, monkeypatch, step)
    written = prepare(
        new_event("tool_called", {"tool": "search", "q": "é \\u0000"}).with_metadata(model="m")
    )
    await insert_one_event_session(admin, pg_schema, "old", written, datetime.now(UTC))
    async with agentstore.open(pg_url, snapshot_interval=2) as store:
        first = await store.replay("old")
        assert [(e.id, e.payload) for e in first] == [
            (written.id, {"tool": "search", "q": "é \\u0000"})
        ]
        await store.append_many("old", [new_event("tool_called", {"tool": "fetch"})] * 1)
        await store.append("old", new_event("custom", {"n": 3}))
        events = await store.replay("old")
        assert [e.sequence_number for e in events] == [1, 2, 3]
        state = await store.get_state("old")
        assert state.version == 3 and state.tool_calls == 2
    rows = await admin.fetch(
        f"SELECT seq, payload->>'tool' AS tool, metadata->>'model' AS model "
        f'FROM "{pg_schema}".events_jsonb WHERE session_id = $1 ORDER BY seq',
        "old",
    )
    assert [(r["seq"], r["tool"], r["model"]) for r in rows] == [
        (1, "search", "m"),
        (2, "fetch", None),
        (3, None, None),
    ]
    version = await admin.fetchval(f'SELECT max(version) FROM "{pg_schema}".schema_migrations')
    assert version == current_version()


async def test_four_hosts_migrate_step_5_at_once_while_an_older_store_appends(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as old:
        old.setattr(pg_schema_module, "MIGRATIONS", pg_schema_module.MIGRATIONS[:4])
        older = await agentstore.open(pg_url, snapshot_interval=0)
    try:
        sid = (await older.create_session()).id
        stop = asyncio.Event()
        going = asyncio.Event()  # set once the older store has appended a few batches
        appended = 0

        async def write() -> None:
            nonlocal appended
            while not stop.is_set():
                batch = [new_event("custom", {"n": appended + k}) for k in (0, 1)]
                await older.append_many(sid, batch)
                appended += 2
                if appended >= 10:
                    going.set()

        writer = asyncio.create_task(write())
        await going.wait()
        hosts = [PostgresBackend(pg_url) for _ in range(4)]
        try:
            await asyncio.gather(*(host.open() for host in hosts))
        finally:
            for host in hosts:
                await host.close()
        async with agentstore.open(pg_url) as newer:
            for _ in range(5):
                await newer.append(sid, new_event("custom", {"n": -1}))
        stop.set()
        await writer
        events = await older.replay(sid)
        assert [e.sequence_number for e in events] == list(range(1, appended + 6))
    finally:
        await older.close()
    versions = await admin.fetch(f'SELECT version FROM "{pg_schema}".schema_migrations')
    assert sorted(r["version"] for r in versions) == list(range(1, current_version() + 1))
    count = await admin.fetchval(f'SELECT count(*) FROM "{pg_schema}".events_jsonb')
    assert count == appended + 5

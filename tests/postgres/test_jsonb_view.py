"""Schema step 5: payload and metadata as jsonb in the view `events_jsonb`, not stored twice.
An older schema is upgraded with its events; an object of one's own on the old columns stops
the step with its name; what jsonb cannot hold is still refused before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import schema as pg_schema_module
from agentstore.backends.postgres.schema import current_version
from agentstore.errors import InvalidEventError, StorageError
from agentstore.store.validate import prepare
from tests.postgres.old_rows import insert_one_event_session, schema_at_version


async def _columns(admin: asyncpg.Connection, schema: str) -> set[str]:
    rows = await admin.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = 'events'",
        schema,
    )
    return {r["column_name"] for r in rows}


async def test_version_4_is_upgraded_and_its_events_are_queryable_as_jsonb(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await schema_at_version(pg_url, monkeypatch, 4)
    assert {"payload", "metadata"} <= await _columns(admin, pg_schema)
    now = datetime.now(UTC)
    event = prepare(new_event("tool_called", {"tool": "search", "n": 1.0}))
    await insert_one_event_session(admin, pg_schema, "s1", event, now)
    async with agentstore.open(pg_url) as store:
        await store.append(
            "s1", new_event("tool_called", {"tool": "fetch"}).with_metadata(model="m")
        )
        assert [e.payload["tool"] for e in await store.replay("s1")] == ["search", "fetch"]
    columns = await _columns(admin, pg_schema)
    assert "payload" not in columns and "metadata" not in columns  # stored once now
    rows = await admin.fetch(
        f"SELECT seq, payload->>'tool' AS tool, payload->'n' AS n, metadata->>'model' AS model "
        f'FROM "{pg_schema}".events_jsonb ORDER BY seq'
    )
    assert [(r["seq"], r["tool"], r["model"]) for r in rows] == [
        (1, "search", None),
        (2, "fetch", "m"),
    ]
    assert rows[0]["n"] == "1.0"  # jsonb keeps the number as written
    versions = await admin.fetch(f'SELECT version FROM "{pg_schema}".schema_migrations')
    assert sorted(r["version"] for r in versions) == list(range(1, current_version() + 1))
    # docs/postgres.md: an index on the view's expression serves queries through the view.
    await admin.execute(
        f'CREATE INDEX by_payload ON "{pg_schema}".events '
        "USING gin ((payload_json::jsonb) jsonb_path_ops)"
    )
    async with admin.transaction():
        await admin.execute("SET LOCAL enable_seqscan = off")
        plan = await admin.fetch(
            f'EXPLAIN SELECT seq FROM "{pg_schema}".events_jsonb '
            """WHERE payload @> '{"tool": "fetch"}'"""
        )
        found = await admin.fetch(
            f'SELECT seq FROM "{pg_schema}".events_jsonb '
            """WHERE payload @> '{"tool": "fetch"}'"""
        )
    assert "by_payload" in "\n".join(r[0] for r in plan)
    assert [r["seq"] for r in found] == [2]


async def test_an_index_of_ones_own_on_the_old_column_stops_the_step_with_its_name(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await schema_at_version(pg_url, monkeypatch, 4)
    await admin.execute(
        f'CREATE INDEX my_tools ON "{pg_schema}".events USING gin (payload jsonb_path_ops)'
    )
    with pytest.raises(StorageError, match=r"index .*my_tools.* uses them: drop it"):
        async with agentstore.open(pg_url):
            pass
    # Nothing of the step was applied: the columns and the index are as they were.
    assert {"payload", "metadata"} <= await _columns(admin, pg_schema)
    assert await admin.fetchval("SELECT to_regclass($1)", f'"{pg_schema}".my_tools') is not None
    version = await admin.fetchval(f'SELECT max(version) FROM "{pg_schema}".schema_migrations')
    assert version == 4
    # As the message says: drop it, and the step runs.
    await admin.execute(f'DROP INDEX "{pg_schema}".my_tools')
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {"n": 1}))
    assert await admin.fetchval(f'SELECT count(*) FROM "{pg_schema}".events_jsonb') == 1


async def test_what_jsonb_cannot_hold_is_refused_before_anything_is_written(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection
) -> None:
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        refused = [
            new_event("custom", {"text": "a\x00b"}),
            new_event("custom", {"deep": [[{"x": ["ok", "a\x00"]}]]}),
            new_event("custom", {"key\x00": 1}),
            new_event("custom", {"n": 1}).with_metadata(note="a\x00b"),
        ]
        for bad in refused:
            with pytest.raises(InvalidEventError, match="cannot store"):
                await store.append_many(session.id, [new_event("custom", {"n": 0}), bad])
        assert await store.get_events(session.id) == []
        # Six characters that only look like NUL in the text (an escaped backslash):
        # stored, and read back exactly.
        looks = {"text": "\\u0000 is how JSON spells NUL"}
        stored = await store.append(session.id, new_event("custom", looks))
        assert stored.sequence_number == 1
        assert [e.payload for e in await store.replay(session.id)] == [looks]
    text = await admin.fetchval(f"""SELECT payload->>'text' FROM "{pg_schema}".events_jsonb""")
    assert text == looks["text"]


@pytest.mark.parametrize("pool", [1, 4])  # one connection: created whole in one statement
async def test_an_import_with_nul_creates_nothing(pg_url: str, pool: int) -> None:
    async with (
        agentstore.open("memory://") as source,
        agentstore.open(f"{pg_url}&pool_max_size={pool}") as target,
    ):
        session = await source.create_session()
        await source.append_many(session.id, [new_event("custom", {"n": i}) for i in range(3)])
        await source.append(session.id, new_event("custom", {"text": "a\x00b"}))
        with pytest.raises(InvalidEventError, match="cannot store"):
            await target.import_session(session, await source.replay(session.id))
        assert await target.list_sessions() == []


async def test_a_store_open_before_the_step_keeps_appending_and_reading_after_it(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as old:
        old.setattr(pg_schema_module, "MIGRATIONS", pg_schema_module.MIGRATIONS[:4])
        before = await agentstore.open(pg_url, snapshot_interval=0)
    try:
        session = await before.create_session()
        await before.append(session.id, new_event("custom", {"n": 1}))
        await before.append_many(session.id, [new_event("custom", {"n": n}) for n in (2, 3)])
        assert len(await before.replay(session.id)) == 3  # its statements are prepared
        async with agentstore.open(pg_url) as after:  # migrates to step 5 meanwhile
            await after.append(session.id, new_event("custom", {"n": 4}))
        assert "payload" not in await _columns(admin, pg_schema)
        await before.append(session.id, new_event("custom", {"n": 5}))
        await before.append_many(session.id, [new_event("custom", {"n": n}) for n in (6, 7)])
        events = await before.replay(session.id)
        assert [e.payload["n"] for e in events] == [1, 2, 3, 4, 5, 6, 7]
        assert [e.sequence_number for e in events] == list(range(1, 8))
    finally:
        await before.close()

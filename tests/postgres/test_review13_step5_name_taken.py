"""Schema step 5 and a relation of one's own already named `events_jsonb`: the step used
to fail with PostgreSQL's bare "relation already exists" (no step named, nothing said of
what to do). It now stops before changing anything, says so, and runs once the name is
free."""

from __future__ import annotations

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StorageError
from tests.postgres.old_rows import schema_at_version


async def test_a_relation_named_events_jsonb_stops_the_step_until_it_is_renamed(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await schema_at_version(pg_url, monkeypatch, 4)
    await admin.execute(f'CREATE TABLE "{pg_schema}".events_jsonb (note text)')
    with pytest.raises(StorageError, match=r"events_jsonb, and a relation of that name exists"):
        async with agentstore.open(pg_url):
            pass
    version = await admin.fetchval(f'SELECT max(version) FROM "{pg_schema}".schema_migrations')
    assert version == 4  # nothing of the step applied: the stored columns are still there
    columns = await admin.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = 'events'",
        pg_schema,
    )
    assert {"payload", "metadata"} <= {r["column_name"] for r in columns}
    # As the message says: free the name, and the step runs; the store works.
    await admin.execute(f'ALTER TABLE "{pg_schema}".events_jsonb RENAME TO my_notes')
    async with agentstore.open(pg_url) as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("custom", {"tool": "search"}))
    tool = await admin.fetchval(
        f"SELECT payload->>'tool' FROM \"{pg_schema}\".events_jsonb WHERE session_id = $1", sid
    )
    assert tool == "search"

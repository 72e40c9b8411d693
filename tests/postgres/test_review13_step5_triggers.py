"""Schema step 5 and a trigger of one's own on `events` whose function reads the dropped
columns (`NEW.payload`, `NEW.metadata`): PostgreSQL records no dependency on a function
body, so the step used to drop the columns and leave the trigger to fail every append
after it (`record "new" has no field "payload"`). The step now stops and names it, as it
does an index or a view on the columns."""

from __future__ import annotations

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StorageError
from tests.postgres.old_rows import schema_at_version


async def _version(admin: asyncpg.Connection, schema: str) -> int:
    return int(await admin.fetchval(f'SELECT max(version) FROM "{schema}".schema_migrations'))


_AUDIT = """
CREATE TABLE "{s}".tool_audit (tool text);
CREATE FUNCTION "{s}".audit_tools() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF {column} ->> 'tool' IS NOT NULL THEN
        INSERT INTO "{s}".tool_audit VALUES ({column} ->> 'tool');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_tools AFTER INSERT ON "{s}".events
    FOR EACH ROW EXECUTE FUNCTION "{s}".audit_tools();
"""


@pytest.mark.parametrize(
    ("column", "fixed"),
    [
        ("NEW.payload", "(NEW.payload_json::jsonb)"),
        ("NEW.metadata", "(NEW.metadata_json::jsonb)"),
        ('new . "payload"', '(new."payload_json"::jsonb)'),
    ],
)
async def test_a_trigger_reading_the_old_columns_stops_the_step_with_its_name(
    pg_url: str,
    pg_schema: str,
    admin: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    fixed: str,
) -> None:
    await schema_at_version(pg_url, monkeypatch, 4)
    await admin.execute(_AUDIT.format(s=pg_schema, column=column))
    with pytest.raises(StorageError, match=r"trigger audit_tools .*audit_tools.*payload_json"):
        async with agentstore.open(pg_url):
            pass
    assert await _version(admin, pg_schema) == 4  # nothing of the step applied
    # As the message says: read the kept text instead, and the step runs; appends work.
    await admin.execute(
        _AUDIT.format(s=pg_schema, column=fixed)
        .replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")
        .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
        .replace("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER")
    )
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        await store.append(
            session.id, new_event("tool_called", {"tool": "search"}).with_metadata(tool="x")
        )
        assert len(await store.replay(session.id)) == 1
    assert await _version(admin, pg_schema) == 5


async def test_a_trigger_reading_only_the_kept_text_does_not_stop_the_step(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await schema_at_version(pg_url, monkeypatch, 4)
    await admin.execute(_AUDIT.format(s=pg_schema, column="(NEW.payload_json::jsonb)"))
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        await store.append(session.id, new_event("tool_called", {"tool": "search"}))
    assert await _version(admin, pg_schema) == 5
    assert await admin.fetchval(f'SELECT tool FROM "{pg_schema}".tool_audit') == "search"

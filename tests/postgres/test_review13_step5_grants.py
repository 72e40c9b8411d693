"""Schema step 5 and the roles that could read `events`: a reporting role given `SELECT` on
the tables (docs/postgres.md's GRANT, run once at set-up) read `events.payload` before the
step; after it, the view `events_jsonb` is where payloads are, and such a role must be able
to read it (it was refused: "permission denied for view events_jsonb")."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from tests.postgres.old_rows import schema_at_version


@pytest.fixture
async def reporter(admin: asyncpg.Connection) -> AsyncIterator[str]:
    role = f"reporter_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')


async def test_a_role_that_could_read_events_reads_the_view_after_the_step(
    pg_url: str,
    pg_database_url: str,
    pg_schema: str,
    admin: asyncpg.Connection,
    reporter: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await schema_at_version(pg_url, monkeypatch, 4)
    # docs/postgres.md, set-up: a role that may only read.
    await admin.execute(f'GRANT USAGE ON SCHEMA "{pg_schema}" TO "{reporter}"')
    await admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{pg_schema}" TO "{reporter}"')
    async with agentstore.open(pg_url) as store:  # runs step 5
        session = await store.create_session()
        await store.append(session.id, new_event("tool_called", {"tool": "search"}))
    parts = urlsplit(pg_database_url)
    as_reporter = urlunsplit(parts._replace(netloc=f"{reporter}@{parts.hostname}:{parts.port}"))
    conn = await asyncpg.connect(as_reporter)
    try:
        tools = await conn.fetch(f"""SELECT payload->>'tool' FROM "{pg_schema}".events_jsonb""")
    finally:
        await conn.close()
    assert [r[0] for r in tools] == ["search"]
    # A role that could not read events cannot read the view either.
    grants = await admin.fetch(
        "SELECT grantee FROM information_schema.role_table_grants "
        "WHERE table_schema = $1 AND table_name = 'events_jsonb' AND privilege_type = 'SELECT'",
        pg_schema,
    )
    assert reporter in {r["grantee"] for r in grants}
    assert "PUBLIC" not in {r["grantee"] for r in grants}


async def test_row_level_security_on_events_holds_through_the_view(
    pg_url: str,
    pg_database_url: str,
    pg_schema: str,
    admin: asyncpg.Connection,
    reporter: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A reporting role that may read the events of one session only (a policy on events)
    # must not read every session's payloads through events_jsonb.
    await schema_at_version(pg_url, monkeypatch, 4)
    await admin.execute(f'GRANT USAGE ON SCHEMA "{pg_schema}" TO "{reporter}"')
    await admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{pg_schema}" TO "{reporter}"')
    await admin.execute(f'ALTER TABLE "{pg_schema}".events ENABLE ROW LEVEL SECURITY')
    await admin.execute(
        f'CREATE POLICY own ON "{pg_schema}".events FOR SELECT TO "{reporter}" '
        "USING (session_id = 'theirs')"
    )
    async with agentstore.open(pg_url) as store:  # runs step 5
        for sid in ("theirs", "others"):
            await store.create_session(session_id=sid)
            await store.append(sid, new_event("tool_called", {"tool": sid}))
    parts = urlsplit(pg_database_url)
    as_reporter = urlunsplit(parts._replace(netloc=f"{reporter}@{parts.hostname}:{parts.port}"))
    conn = await asyncpg.connect(as_reporter)
    try:
        direct = await conn.fetch(f'SELECT session_id FROM "{pg_schema}".events')
        through_view = await conn.fetch(
            f"""SELECT payload->>'tool' FROM "{pg_schema}".events_jsonb"""
        )
    finally:
        await conn.close()
    assert [r[0] for r in direct] == ["theirs"]
    assert [r[0] for r in through_view] == ["theirs"]

"""Rows written the way an older agentstore wrote them, for tests of schema upgrades."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import pytest

from agentstore.backends.base import PendingEvent
from agentstore.backends.postgres import PostgresBackend
from agentstore.backends.postgres import schema as pg_schema_module


async def insert_one_event_session(
    admin: asyncpg.Connection, schema: str, session_id: str, event: PendingEvent, now: datetime
) -> None:
    """A session holding `event` as its event 1, naming only the columns of step 1 (today's
    statements name columns of later steps)."""
    await admin.execute(
        f'INSERT INTO "{schema}".sessions (id, created_at, last_seq, last_ts) '
        "VALUES ($1, $2, 1, $2)",
        session_id,
        now,
    )
    await admin.execute(
        f'INSERT INTO "{schema}".events (session_id, seq, id, type, ts, payload_json, '
        "metadata_json) VALUES ($1, 1, $2, $3, $4, $5, $6)",
        session_id,
        event.id,
        event.type,
        now,
        event.payload_json.decode(),
        event.metadata_json.decode(),
    )


async def schema_at_version(pg_url: str, monkeypatch: pytest.MonkeyPatch, version: int) -> None:
    """Create the store's schema at `pg_url` as it stood after step `version` (what an
    older agentstore left), for a test of the later steps."""
    with monkeypatch.context() as old:
        old.setattr(pg_schema_module, "MIGRATIONS", pg_schema_module.MIGRATIONS[:version])
        before = PostgresBackend(pg_url)
        await before.open()
        await before.close()

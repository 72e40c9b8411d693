"""Times on PostgreSQL are exact and aware at both ends of Python's calendar: asyncpg wrote
0001-01-01T00:00:00Z (a Go agent's unset time) and 9999-12-31T23:59:59.999999Z as
-infinity/infinity and read them back naive, and one such session failed every listing."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

import agentstore
from agentstore import Session, new_event

FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize("when", [FIRST, LAST, datetime(2026, 11, 30, 6, 0, 0, 123456, tzinfo=UTC)])
async def test_a_session_and_its_events_keep_their_times(pg_url: str, when: datetime) -> None:
    async with agentstore.open(pg_url) as store:
        event = new_event("custom", {"n": 1})
        event.sequence_number, event.session_id, event.timestamp = 1, "t-1", when
        await store.import_session(Session(id="t-1", created_at=when, updated_at=when), [event])
        await store.create_session(session_id="now")
        assert {s.id for s in await store.list_sessions()} == {"t-1", "now"}
        session = await store.get_session("t-1")
        assert session.created_at == when and session.created_at.tzinfo is not None
        (read,) = await store.get_events("t-1")
        assert read.timestamp == when and read.timestamp.tzinfo is not None
        assert read.to_json() == event.to_json()


async def test_infinity_written_by_others_reads_as_the_calendars_ends(
    pg_url: str, pg_database_url: str, pg_schema: str
) -> None:
    """Rows from before (asyncpg's ±infinity) read back as the first and last instants."""
    async with agentstore.open(pg_url) as store:
        await store.create_session(session_id="old")
    conn = await asyncpg.connect(pg_database_url)
    try:
        await conn.execute(
            f"UPDATE \"{pg_schema}\".sessions SET created_at = '-infinity' WHERE id = 'old'"
        )
    finally:
        await conn.close()
    async with agentstore.open(pg_url) as store:
        (session,) = await store.list_sessions()
        assert session.created_at == datetime.min.replace(tzinfo=UTC)

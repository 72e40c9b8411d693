"""Review 11: PostgreSQL reads a session's batch marks as runs (`MarkRuns`), a row a run
(see tests/test_review11_copy_marks_runs.py)."""

from __future__ import annotations

import asyncpg

import agentstore
from agentstore import new_event
from agentstore.backends.marks import MarkRuns
from tests.batches_helpers import append_mixed


async def test_marks_read_as_runs(pg_url: str) -> None:
    async with agentstore.open(pg_url) as store:
        sid = (await store.create_session()).id
        await append_mixed(store, sid, 0)
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(4)])
        marks = await store.backend.batch_marks(sid)
        assert isinstance(marks, MarkRuns)
        assert marks == {1: 3, 2: 3, 5: 6, 8: 11, 9: 11, 10: 11}


async def test_one_mark_in_two_places_is_two_runs(pg_url: str) -> None:
    # Only a damaged table has them (a batch's events are consecutive): read as they are,
    # not as one run over the events between.
    async with agentstore.open(pg_url) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(6)])
        conn = await asyncpg.connect(pg_url.split("?")[0])
        try:
            schema = pg_url.split("schema=")[1]
            await conn.execute(
                f'UPDATE "{schema}".events SET batch_end = CASE WHEN seq IN (1, 2, 5) '
                "THEN 9 ELSE NULL END WHERE session_id = $1",
                sid,
            )
        finally:
            await conn.close()
        assert await store.backend.batch_marks(sid) == {1: 9, 2: 9, 5: 9}

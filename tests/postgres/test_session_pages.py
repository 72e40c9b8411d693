"""Appends update their session rows in place: the rows stay on their pages (HOT updates,
no new entries in the sessions indexes, no bloat), with many sessions per page."""

from __future__ import annotations

import asyncio

import asyncpg

import agentstore
from agentstore import new_event


async def test_appends_keep_session_rows_on_their_pages(
    pg_url: str, pg_database_url: str, pg_schema: str
) -> None:
    table = f'"{pg_schema}".sessions'
    blocks = f"SELECT id, (ctid::text::point)[0]::int AS block FROM {table}"
    async with agentstore.open(f"{pg_url}&pool_max_size=8", snapshot_interval=0) as store:
        sids = [
            (await store.create_session(labels={"env": "prod", "team": "agents"})).id
            for _ in range(300)
        ]
        admin = await asyncpg.connect(pg_database_url)
        try:
            before = {r["id"]: r["block"] for r in await admin.fetch(blocks)}
            assert len(set(before.values())) > 1  # several pages of sessions

            async def writer(part: list[str]) -> None:
                for sid in part:
                    await store.append(sid, new_event("custom", {}))

            await asyncio.gather(*(writer(sids[k::8]) for k in range(8)))
            after = {r["id"]: r["block"] for r in await admin.fetch(blocks)}
        finally:
            await admin.close()
    # Full pages (the default fillfactor) moved about a quarter of the rows elsewhere.
    moved = [sid for sid in sids if after[sid] != before[sid]]
    assert moved == []

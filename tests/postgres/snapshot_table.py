"""The snapshots table read directly, as other stores see it (for the snapshot tests)."""

from __future__ import annotations

import asyncpg


async def connect(pg_url: str) -> asyncpg.Connection:
    """A plain connection to the database of a store URL (its options left out)."""
    return await asyncpg.connect(pg_url.split("?")[0])


async def stored_versions(pg_url: str, schema: str, session_id: str) -> list[int]:
    """The snapshot versions of the session in the table (what other stores read)."""
    conn = await connect(pg_url)
    try:
        rows = await conn.fetch(
            f'SELECT version FROM "{schema}".snapshots WHERE session_id = $1', session_id
        )
    finally:
        await conn.close()
    return [r["version"] for r in rows]

"""Session rows: read, change, list newest first by cursor, find by prefix, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from agentstore.backends.base import (
    UNSET,
    SessionChanges,
    SessionPage,
    SessionQuery,
    parse_session_cursor,
    session_cursor,
)
from agentstore.backends.postgres._driver import translated
from agentstore.backends.postgres.jsontext import refuse_nul_in_session
from agentstore.backends.postgres.pool import Database
from agentstore.backends.postgres.rows import SESSION_COLUMNS, session_from_row
from agentstore.errors import ConcurrencyError, SessionNotFoundError
from agentstore.session import Session

__all__ = ["SessionRows"]


class SessionRows:
    """The session statements of one schema."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        self._s = s
        self._get = f"SELECT {SESSION_COLUMNS} FROM {s}.sessions WHERE id = $1"
        self._head = f"SELECT last_seq, created_at FROM {s}.sessions WHERE id = $1"
        # ids are "C"-collated: LIKE 'prefix%' is a range scan of the primary key, and the
        # exact match (the shortest) sorts first by itself.
        self._prefix = (
            f"SELECT id FROM {s}.sessions WHERE id LIKE $1 ESCAPE '\\' ORDER BY id LIMIT $2"
        )
        self._delete = (
            f"DELETE FROM {s}.sessions WHERE id = $1 "
            "AND ($2::bigint IS NULL OR last_seq = $2) RETURNING id"
        )
        self._delete_events = f"DELETE FROM {s}.events WHERE session_id = $1"
        self._size = (
            f"SELECT coalesce(sum(pg_column_size(e.*)), 0) + "
            f"(SELECT pg_column_size(s.*) FROM {s}.sessions s WHERE s.id = $1) "
            f"FROM {s}.events e WHERE e.session_id = $1"
        )

    async def get(self, conn: Database | Any, session_id: str) -> Session:
        """`Backend.get_session`."""
        async with translated(f"reading session {session_id!r}"):
            row = await conn.fetchrow(self._get, session_id)
        if row is None:
            raise SessionNotFoundError(session_id)
        return session_from_row(row)

    async def head(self, conn: Database | Any, session_id: str) -> tuple[int, datetime]:
        """`Backend.head` (and `last_seq`): one indexed row."""
        async with translated(f"reading session {session_id!r}"):
            row = await conn.fetchrow(self._head, session_id)
        if row is None:
            raise SessionNotFoundError(session_id)
        return int(row[0]), row[1]

    async def update(self, pool: Database, session_id: str, changes: SessionChanges) -> Session:
        """`Backend.update_session`: one UPDATE of the fields that are set."""
        sets: list[str] = []
        args: list[Any] = [session_id]
        if changes.name is not UNSET:
            args.append(changes.name)
            sets.append(f"name = ${len(args)}")
        if changes.labels is not UNSET:
            refuse_nul_in_session(session_id, changes.labels, what="updating")
            args.append(orjson.dumps(changes.labels).decode())
            sets.append(f"labels = ${len(args)}::jsonb")
        if changes.budget is not UNSET:
            budget = changes.budget
            args.append(budget.model_dump_json() if budget is not None else None)
            sets.append(f"budget = ${len(args)}::jsonb")
        if not sets:
            return await self.get(pool, session_id)
        sql = (
            f"UPDATE {self._s}.sessions SET {', '.join(sets)} WHERE id = $1 "
            f"RETURNING {SESSION_COLUMNS}"
        )
        async with translated(f"updating session {session_id!r}"):
            row = await pool.fetchrow(sql, *args)
        if row is None:
            raise SessionNotFoundError(session_id)
        return session_from_row(row)

    async def page(self, conn: Database | Any, query: SessionQuery) -> SessionPage:
        """`Backend.list_sessions`: newest first, one index scan from the cursor."""
        where: list[str] = []
        args: list[Any] = []
        if query.labels and any("\x00" in k or "\x00" in v for k, v in query.labels.items()):
            # No label here can hold NUL (jsonb refuses it: such a session is refused at
            # creation), so nothing matches; sent, the filter would fail the listing.
            return SessionPage([], None)
        if query.labels:
            args.append(orjson.dumps(query.labels).decode())
            where.append(f"labels @> ${len(args)}::jsonb")
        if query.cursor is not None:
            created, sid = parse_session_cursor(query.cursor)
            args.extend((created, sid))
            where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
        args.append(query.limit + 1)
        sql = (
            f"SELECT {SESSION_COLUMNS} FROM {self._s}.sessions "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} "
            f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}"
        )
        async with translated("listing sessions"):
            rows = await conn.fetch(sql, *args)
        sessions = [session_from_row(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit and sessions
        return SessionPage(sessions, session_cursor(sessions[-1]) if more else None)

    async def find_ids(self, conn: Database | Any, prefix: str, limit: int) -> list[str]:
        """`Backend.find_session_ids`."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        async with translated("finding sessions"):
            rows = await conn.fetch(self._prefix, pattern, limit)
        return [row["id"] for row in rows]

    async def delete(self, pool: Database, session_id: str, expected_seq: int | None) -> None:
        """`Backend.delete_session`: the row (under the append lock), then its events.

        The events go in a second statement of the same transaction: it sees every append
        that committed before the row was deleted (an append that comes after finds no row
        and writes nothing). Snapshots go with the row (foreign key).
        """
        async with (
            translated(f"deleting session {session_id!r}"),
            pool.acquire() as conn,
            conn.transaction(),
        ):
            deleted = await conn.fetchval(self._delete, session_id, expected_seq)
            if deleted is None:
                actual = await conn.fetchval(self._head, session_id)
                if actual is None:
                    raise SessionNotFoundError(session_id)
                raise ConcurrencyError(session_id, expected_seq or 0, int(actual))
            await conn.execute(self._delete_events, session_id)

    async def size(self, pool: Database, session_id: str) -> int:
        """`Backend.storage_size`: the bytes of the session's rows (before compression)."""
        async with translated(f"measuring session {session_id!r}"):
            value = await pool.fetchval(self._size, session_id)
        if value is None:
            raise SessionNotFoundError(session_id)
        return int(value)

"""Snapshots: one row per (session, reducer), replaced whole."""

from __future__ import annotations

import orjson

from agentstore.backends.base import SnapshotRecord
from agentstore.backends.postgres._driver import translated
from agentstore.backends.postgres.pool import Database
from agentstore.backends.postgres.rows import SESSION_COLUMNS, session_from_row
from agentstore.errors import SessionNotFoundError
from agentstore.session import Session

__all__ = ["SnapshotRows"]

# The primary key cannot hold NULL: "no fingerprint" is stored as the empty string.
_NO_REDUCER = ""


class SnapshotRows:
    """The snapshot statements of one schema."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        # INSERT ... SELECT from the session row: a deleted session gets no snapshot, and
        # the foreign key removes snapshots with their session. A snapshot is a cache of
        # events already durable (an append is acknowledged after its commit is flushed),
        # so its own commit need not wait for the disk (SET LOCAL synchronous_commit off,
        # as a function in the statement): a crash can lose only the snapshot, which is
        # rebuilt, never leave one ahead of the log (WAL is replayed in order). Half the
        # time of a flushed commit here; append_many of 100 saves one per batch.
        self._save = (
            "WITH c AS (SELECT set_config('synchronous_commit', 'off', true)) "
            f"INSERT INTO {s}.snapshots (session_id, reducer, version, state, created_at) "
            f"SELECT id, $2, $3, $4::json, $5 FROM {s}.sessions, c WHERE id = $1 "
            "ON CONFLICT (session_id, reducer) DO UPDATE SET version = excluded.version, "
            "state = excluded.state, created_at = excluded.created_at"
        )
        self._load = (
            f"SELECT version, state, created_at FROM {s}.snapshots "
            "WHERE session_id = $1 AND reducer = $2"
        )
        cols = ", ".join(f"s.{c.strip()}" for c in SESSION_COLUMNS.split(","))
        self._both = (
            f"SELECT {cols}, n.version AS snap_version, n.state AS snap_state, "
            f"n.created_at AS snap_created FROM {s}.sessions s LEFT JOIN {s}.snapshots n "
            "ON n.session_id = s.id AND n.reducer = $2 WHERE s.id = $1"
        )

    async def save(self, pool: Database, snap: SnapshotRecord) -> None:
        """`Backend.save_snapshot`."""
        async with translated(f"saving a snapshot of session {snap.session_id!r}"):
            await pool.execute(
                self._save,
                snap.session_id,
                snap.reducer or _NO_REDUCER,
                snap.version,
                orjson.dumps(snap.state).decode(),
                snap.created_at,
            )

    async def load(
        self, pool: Database, session_id: str, reducer: str | None
    ) -> SnapshotRecord | None:
        """`Backend.load_snapshot`."""
        async with translated(f"loading the snapshot of session {session_id!r}"):
            row = await pool.fetchrow(self._load, session_id, reducer or _NO_REDUCER)
        if row is None:
            return None
        return _record(session_id, reducer, row["version"], row["state"], row["created_at"])

    async def load_with_session(
        self, pool: Database, session_id: str, reducer: str | None
    ) -> tuple[Session, SnapshotRecord | None]:
        """`Backend.load_session_and_snapshot` in one query."""
        async with translated(f"reading session {session_id!r}"):
            row = await pool.fetchrow(self._both, session_id, reducer or _NO_REDUCER)
        if row is None:
            raise SessionNotFoundError(session_id)
        snap = None
        if row["snap_version"] is not None:
            snap = _record(
                session_id, reducer, row["snap_version"], row["snap_state"], row["snap_created"]
            )
        return session_from_row(row), snap


def _record(
    session_id: str, reducer: str | None, version: int, state: str, created: object
) -> SnapshotRecord | None:
    try:
        value = orjson.loads(state)
    except orjson.JSONDecodeError:
        return None  # a cache: an unreadable snapshot is rebuilt from the log
    if not isinstance(value, dict):
        return None
    return SnapshotRecord(session_id, version, value, reducer, created)  # type: ignore[arg-type]

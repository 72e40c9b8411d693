"""Snapshots: one row per (session, reducer), replaced whole.

A snapshot is a cache of events already stored, so it need not be written at once: a saved
snapshot waits here, and the next append to its session carries it in the append's own
statement (`Appender`), which spares it a statement, a round trip and a commit of its own.
Measured here: the separate statement cost about as much client CPU as the append of 100
events it followed (each round trip wakes the server), and append_many of 100 saves one
snapshot per batch. One no append picks up within `RIDE_WAIT` seconds is written alone,
with any others waiting then, in one statement; so is one larger than `RIDE_MAX` (an
append should not carry a big state), and everything waiting when the backend closes.

Rules that keep it a cache that never lies: this backend reads its own snapshots (a load
sees the waiting or travelling one first); one (session, reducer) is never in two
statements at once, and a newer snapshot replaces a waiting older one, so an older one
never lands over a newer; deleting a session waits for its snapshots in a statement to
land and drops the waiting ones; an append carries a snapshot only into a session row it
updates (so only into the session it was taken of, never into one deleted meanwhile); a
carried snapshot whose statement failed or wrote nothing waits again, unless a newer one
arrived.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Final

import orjson

from agentstore.backends.base import SnapshotRecord
from agentstore.backends.postgres._driver import translated
from agentstore.backends.postgres.pool import Database
from agentstore.backends.postgres.rows import SESSION_COLUMNS, session_from_row
from agentstore.errors import SessionNotFoundError
from agentstore.eventjson import aware_utc
from agentstore.session import Session

__all__ = ["RIDE_MAX", "RIDE_WAIT", "Carried", "SnapshotRows", "carried_values"]

log = logging.getLogger("agentstore.postgres")

# The primary key cannot hold NULL: "no fingerprint" is stored as the empty string.
_NO_REDUCER = ""

RIDE_WAIT: Final = 1.0
"""Seconds a saved snapshot waits for an append to its session before it is written alone."""

RIDE_MAX: Final = 64 * 1024
"""A snapshot whose JSON is longer than this is written alone at once (not carried)."""

Carried = tuple[SnapshotRecord, str]
"""A snapshot and its state's JSON text, as an append statement carries it."""


class SnapshotRows:
    """The snapshot statements of one schema."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        # INSERT ... SELECT from the session row: a deleted session gets no snapshot, and
        # the foreign key removes snapshots with their session; nor does a session made
        # after the snapshot was taken (another process deleted the one it was taken of
        # and made a new one with its id), and an older one never replaces a newer one
        # (another process's). A snapshot is a cache of events already durable (an append
        # is acknowledged after its commit is flushed), so its own commit need not wait
        # for the disk (SET LOCAL synchronous_commit off, as a function in the statement):
        # a crash can lose only the snapshot, which is rebuilt, never leave one ahead of
        # the log (WAL is replayed in order). Half the time of a flushed commit here. (One
        # an append carries commits with the append.)
        self._save = (
            "WITH c AS (SELECT set_config('synchronous_commit', 'off', true)) "
            f"INSERT INTO {s}.snapshots (session_id, reducer, version, state, created_at) "
            "SELECT x.id, u.r, u.v, u.j::json, u.t FROM c, unnest($1::text[], $2::text[], "
            "$3::bigint[], $4::text[], $5::timestamptz[]) AS u(sid, r, v, j, t) "
            f"JOIN {s}.sessions x ON x.id = u.sid AND x.created_at <= u.t "
            "ON CONFLICT (session_id, reducer) DO UPDATE SET version = excluded.version, "
            "state = excluded.state, created_at = excluded.created_at "
            f"WHERE {s}.snapshots.version <= excluded.version"
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
        # session id -> reducer -> the snapshot waiting for an append (or the timer)
        self._waiting: dict[str, dict[str, Carried]] = {}
        # (session id, reducer) -> the snapshot in a statement now
        self._flying: dict[tuple[str, str], Carried] = {}
        # (session id, reducer) in flight -> set when it lands (for a delete waiting on it)
        self._landing: dict[tuple[str, str], asyncio.Event] = {}
        self._pool: Database | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def save(self, pool: Database, snap: SnapshotRecord) -> None:
        """`Backend.save_snapshot`: keep it for the next append to its session to carry, or
        write it soon (see the module's notes)."""
        text = orjson.dumps(snap.state).decode()
        reducer = snap.reducer or _NO_REDUCER
        self._pool = pool
        self._waiting.setdefault(snap.session_id, {})[reducer] = (snap, text)
        self._arm(0.0 if len(text) > RIDE_MAX else RIDE_WAIT)

    def take(self, session_id: str) -> Carried | None:
        """A snapshot of `session_id` for an append statement to carry, or None; the
        caller hands it back with `landed`."""
        if session_id not in self._waiting:  # most appends: nothing waits
            return None
        return self._take(session_id, RIDE_MAX)

    def _take(self, session_id: str, longest: int | None) -> Carried | None:
        """Move a waiting snapshot of the session (its JSON at most `longest` long) into
        flight, unless one of its session and reducer is in flight already."""
        waiting = self._waiting.get(session_id)
        if not waiting:
            return None
        for reducer, carried in waiting.items():
            fits = longest is None or len(carried[1]) <= longest
            if fits and (session_id, reducer) not in self._flying:
                del waiting[reducer]
                if not waiting:
                    del self._waiting[session_id]
                self._flying[session_id, reducer] = carried
                return carried
        return None

    def landed(self, carried: Carried, *, again: bool) -> None:
        """A statement that carried `carried` ended; with `again` (it wrote nothing) the
        snapshot waits again, unless a newer one of its session and reducer arrived."""
        snap = carried[0]
        reducer = snap.reducer or _NO_REDUCER
        del self._flying[snap.session_id, reducer]
        landing = self._landing.pop((snap.session_id, reducer), None)
        if landing is not None:
            landing.set()
        waiting = self._waiting.get(snap.session_id)
        if again and (waiting is None or reducer not in waiting):
            self._waiting.setdefault(snap.session_id, {})[reducer] = carried
            waiting = self._waiting[snap.session_id]
        if waiting and reducer in waiting:
            self._arm(RIDE_WAIT)

    def waiting(self, session_id: str, reducer: str | None) -> SnapshotRecord | None:
        """The snapshot of (session, reducer) saved here and not yet known to be written."""
        key = reducer or _NO_REDUCER
        carried = self._waiting.get(session_id, {}).get(key) or self._flying.get((session_id, key))
        return None if carried is None else carried[0]

    async def forget(self, session_id: str) -> None:
        """Drop the snapshots of a session about to be deleted, once none of them is in a
        statement: one written alone that landed after the delete could land on a session
        made again with the same id (the foreign key finds the new row), and until it
        landed this backend would read it back as the new session's."""
        self._waiting.pop(session_id, None)
        while flying := [key for key in self._flying if key[0] == session_id]:
            await self._landing.setdefault(flying[0], asyncio.Event()).wait()
        self._waiting.pop(session_id, None)  # one that landed unwritten waits no more

    def _arm(self, delay: float) -> None:
        """Write what waits (and no append took) in `delay` seconds, or sooner if armed so."""
        loop = asyncio.get_running_loop()
        timer = self._timer
        if timer is not None:
            if timer.when() <= loop.time() + delay:
                return
            timer.cancel()
        self._timer = loop.call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._write_waiting())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_waiting(self) -> None:
        """Write every waiting snapshot that is in no statement now, in one statement."""
        taken: list[Carried] = []
        for session_id in list(self._waiting):
            while (carried := self._take(session_id, None)) is not None:
                taken.append(carried)
        if not taken or self._pool is None:
            return
        again = True  # cancelled: they wait again
        try:
            async with translated("saving snapshots"):
                await self._pool.execute(
                    self._save,
                    [c[0].session_id for c in taken],
                    [c[0].reducer or _NO_REDUCER for c in taken],
                    [c[0].version for c in taken],
                    [c[1] for c in taken],
                    [c[0].created_at for c in taken],
                )
            again = False
        except Exception as exc:
            # A cache, not retried: a lost snapshot only makes the next cold fold longer.
            log.warning("agentstore: %d snapshots not saved: %r", len(taken), exc)
            again = False
        finally:
            for carried in taken:
                self.landed(carried, again=again)

    async def close(self) -> None:
        """Write everything waiting and wait for the writes in flight (the backend closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._tasks:
            await asyncio.wait(list(self._tasks))
        await self._write_waiting()
        if self._timer is not None:  # a write that landed re-armed: nothing is waiting now
            self._timer.cancel()
            self._timer = None

    async def load(
        self, pool: Database, session_id: str, reducer: str | None
    ) -> SnapshotRecord | None:
        """`Backend.load_snapshot` (one saved here and not yet written first)."""
        mine = self.waiting(session_id, reducer)
        if mine is not None:
            return mine
        async with translated(f"loading the snapshot of session {session_id!r}"):
            row = await pool.fetchrow(self._load, session_id, reducer or _NO_REDUCER)
        if row is None:
            return None
        return _record(session_id, reducer, row["version"], row["state"], row["created_at"])

    async def load_with_session(
        self, pool: Database, session_id: str, reducer: str | None
    ) -> tuple[Session, SnapshotRecord | None]:
        """`Backend.load_session_and_snapshot` in one query (the snapshot saved here and
        not yet written first)."""
        async with translated(f"reading session {session_id!r}"):
            row = await pool.fetchrow(self._both, session_id, reducer or _NO_REDUCER)
        if row is None:
            raise SessionNotFoundError(session_id)
        snap = None
        if row["snap_version"] is not None:
            snap = _record(
                session_id, reducer, row["snap_version"], row["snap_state"], row["snap_created"]
            )
        session = session_from_row(row)
        mine = self.waiting(session_id, reducer)
        # Not of a session made after it was taken: another process deleted the one it was
        # taken of and made a new one with its id (the statements refuse it too).
        if (
            mine is not None
            and aware_utc(mine.created_at) >= session.created_at
            and (snap is None or mine.version >= snap.version)
        ):
            snap = mine
        return session, snap


def carried_values(carried: Carried) -> tuple[str, int, str, datetime]:
    """The values of a carried snapshot as an append statement takes them: reducer,
    version, state JSON, time."""
    snap, text = carried
    return snap.reducer or _NO_REDUCER, snap.version, text, snap.created_at


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

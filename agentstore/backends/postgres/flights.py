"""Shared flights: concurrent appends to different sessions go to the server as one statement.

Why: on a machine where the client and the server share the cores, a round trip costs more
CPU than the rows it carries (the send, the wake-up of the server process, the parse and
the commit of a statement of its own). Eight writers each sending their own statement
spent about 800 µs of CPU (client and server) per event here; in one statement they share
the round trip, the commit and its WAL flush.

How: an append goes alone, as its own statement, while fewer than `MAX_FLIGHTS`
statements are in flight and nobody is queued, so a lone writer pays nothing extra. Else it
joins the queue; when a flight lands, the next one takes what is queued, at most one append
per session (a session row is bumped once per statement; a second append to it waits for
the next flight). The statement locks the session rows in id order (two flights, from this
process or another, never deadlock on each other), bumps each `last_seq`, inserts every
event and returns `(session_id, base, ts, followed)` per session written (one row tells a
session's events: `base + 1 ..`, all at `ts`; `followed`: notify its followers).

What each append sees is what its own statement would have given: its rows, or no rows
when its session row did not match (the session is gone or `expected_seq` was lost; the
caller then resolves it alone). A server error in a flight (an id already stored in one of
the appends, a trigger of the user's that refuses a row, a statement cancelled by a
deadlock) rolls all of it back, and each of its appends then runs alone; a lost connection
or a timeout fails them all (none or all of the flight was committed, and a retry is safe
either way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from agentstore.backends.base import PendingEvent
from agentstore.backends.postgres._driver import CONNECTION_ERRORS, asyncpg
from agentstore.backends.postgres.pool import Database

__all__ = ["FLIGHT_EVENTS", "MAX_FLIGHTS", "Flights"]

MAX_FLIGHTS: Final = 1
"""Append statements of one backend in flight at once (the rest queue for the next)."""

FLIGHT_EVENTS: Final = 1000
"""A flight takes queued appends up to about this many events (at least one append)."""

_SHARED = """
WITH b AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS b(sid, n, expected)
), l AS (
    SELECT x.id FROM {s}.sessions x WHERE x.id = ANY($1::text[]) ORDER BY x.id FOR UPDATE
), h AS (
    UPDATE {s}.sessions AS x
    SET last_seq = x.last_seq + b.n, last_ts = greatest(x.last_ts, now())
    FROM b JOIN l ON l.id = b.sid
    WHERE x.id = b.sid AND (b.expected IS NULL OR x.last_seq = b.expected)
    RETURNING x.id, x.last_seq - b.n AS base, b.n, x.last_ts,
        x.followed_until > now() AS followed, x.created_at
), i AS (
    INSERT INTO {s}.events
        (session_id, seq, id, type, ts, payload_json, metadata_json, batch_end)
    SELECT h.id, h.base + u.k, u.id, u.type, h.last_ts, u.p, u.m,
        CASE WHEN u.k < h.n THEN h.base + h.n END
    FROM h JOIN unnest($4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
        AS u(sid, k, id, type, p, m) ON u.sid = h.id
)
SELECT id, base, last_ts, followed, created_at FROM h
"""

Alone = Callable[[Database, str, Sequence[PendingEvent], int | None], Awaitable[list[Any] | None]]
"""Run one append as its own statement: `[(base, ts, followed, created_at)]` (its events
are `base + 1 ..`, all at `ts`; `followed`: a follower holds a lease on the session;
`created_at`: the session's), [] (its
session row did not match) or None (an id is stored)."""

_GO_ALONE: Final = object()  # a flight's answer to an append that must run alone


class _Entry:
    __slots__ = ("batch", "expected", "fut", "session_id")

    def __init__(
        self,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected: int | None,
        fut: asyncio.Future[Any],
    ) -> None:
        self.session_id = session_id
        self.batch = batch
        self.expected = expected
        self.fut = fut


class Flights:
    """The append queue of one backend: appends without timestamps of their own."""

    def __init__(self, schema: str, alone: Alone) -> None:
        self._sql = _SHARED.format(s=f'"{schema}"')
        self._alone = alone
        self._queue: list[_Entry] = []
        self._flying = 0
        self._scheduled = False
        self.shared = 0
        """Flights so far that carried more than one append."""
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(
        self,
        pool: Database,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> list[Any] | None:
        """Append `batch`: `[(base, ts, followed)]` as `Alone`, [] (nothing written: resolve it), or
        None (an id of it is stored already)."""
        if self._flying < MAX_FLIGHTS and not self._queue and not self._scheduled:
            self._flying += 1
            try:
                return await self._alone(pool, session_id, batch, expected_seq)
            finally:
                # `_landed(pool, shared=False)`, without its call (a lone writer's path).
                self._flying -= 1
                if self._queue:
                    self._schedule(pool)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Entry(session_id, batch, expected_seq, fut))
        self._schedule(pool)
        rows = await fut
        if rows is _GO_ALONE:
            return await self._alone(pool, session_id, batch, expected_seq)
        return rows  # type: ignore[no-any-return]

    def _schedule(self, pool: Database) -> None:
        """Launch soon: after the tasks ready to run now, which may queue appends too."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._launch, pool)

    def _launch(self, pool: Database) -> None:
        """Start the next flight if a slot is free and appends are queued."""
        self._scheduled = False
        while self._flying < MAX_FLIGHTS and self._queue:
            taken: list[_Entry] = []
            rest: list[_Entry] = []
            sessions: set[str] = set()
            events = 0
            for entry in self._queue:
                if entry.fut.done():  # its caller was cancelled while queued
                    continue
                if entry.session_id in sessions or (taken and events >= FLIGHT_EVENTS):
                    rest.append(entry)
                    continue
                taken.append(entry)
                sessions.add(entry.session_id)
                events += len(entry.batch)
            self._queue = rest
            if not taken:
                return
            self._flying += 1
            task = asyncio.get_running_loop().create_task(self._fly(pool, taken))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fly(self, pool: Database, entries: list[_Entry]) -> None:
        try:
            if len(entries) == 1:  # nothing to share: the statement of one append
                entry = entries[0]
                try:
                    alone = await self._alone(pool, entry.session_id, entry.batch, entry.expected)
                except Exception as exc:
                    _fail(entries, exc)
                else:
                    _settle(entry, alone)
                return
            self.shared += 1
            try:
                rows = await pool.fetch(self._sql, *_arguments(entries))
            except asyncpg.PostgresError as exc:
                if isinstance(exc, CONNECTION_ERRORS):
                    _fail(entries, exc)
                else:  # rolled back whole: each append finds out alone what it gets
                    for entry in entries:
                        _settle(entry, _GO_ALONE)
                return
            except Exception as exc:
                _fail(entries, exc)
                return
            by_session = {row[0]: [(row[1], row[2], row[3], row[4])] for row in rows}
            for entry in entries:
                _settle(entry, by_session.get(entry.session_id, []))
        finally:
            self._landed(pool, shared=len(entries) > 1)

    def _landed(self, pool: Database, *, shared: bool) -> None:
        """Free a slot. After a shared flight the next one leaves only once the appends just
        answered have run on: their writers usually append again at once, and all join it
        (rather than the first going alone and the rest waiting behind it)."""
        self._flying -= 1
        if shared or self._queue:
            self._schedule(pool)


def _arguments(entries: list[_Entry]) -> tuple[list[Any], ...]:
    sids, counts, expected = [], [], []
    u_sid: list[str] = []
    u_k: list[int] = []
    ids: list[str] = []
    types: list[str] = []
    payloads: list[str] = []
    metas: list[str] = []
    for entry in entries:
        sid = entry.session_id
        sids.append(sid)
        counts.append(len(entry.batch))
        expected.append(entry.expected)
        for k, p in enumerate(entry.batch, start=1):
            u_sid.append(sid)
            u_k.append(k)
            ids.append(p.id)
            types.append(p.type)
            payloads.append(p.payload_json.decode())
            metas.append(p.metadata_json.decode())
    return sids, counts, expected, u_sid, u_k, ids, types, payloads, metas


def _settle(entry: _Entry, value: Any) -> None:
    if not entry.fut.done():
        entry.fut.set_result(value)


def _fail(entries: list[_Entry], exc: BaseException) -> None:
    for entry in entries:
        if not entry.fut.done():
            entry.fut.set_exception(exc)

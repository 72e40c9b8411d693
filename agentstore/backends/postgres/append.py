"""Appending: one statement, one round trip, for the common case; a locked transaction for
the rare ones (a retry, a lost `expected_seq` race, ids repeated inside a batch). The
statements' text is in `append_sql`.

The fast statement bumps the session row's `last_seq` (which takes its row lock) and
inserts the whole batch from arrays (`unnest`) numbered from the old `last_seq`, in
autocommit: the row lock is held for one round trip. When it writes nothing (session
gone, `expected_seq` lost) or hits the unique `(session_id, id)` index (an id already
stored, which also rolls the bump back), the ids are looked up to tell an idempotent retry
from a conflict. Measured here: 1.9x the classic BEGIN/UPDATE/INSERT/COMMIT with one
writer, 2.8x with eight writers on one session (docs/postgres.md, bench/RESULTS.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from agentstore.backends.base import AppendResult, PendingEvent, plan_append
from agentstore.backends.postgres import append_sql as sql_text
from agentstore.backends.postgres._driver import CAUGHT, pgexc, refused, translate, translated
from agentstore.backends.postgres.flights import Flights
from agentstore.backends.postgres.pool import Database
from agentstore.backends.postgres.rows import EVENT_COLUMNS, event_from_row, session_values
from agentstore.backends.postgres.snapshots import SnapshotRows, carried_values
from agentstore.backends.types import check_batch_marks
from agentstore.errors import (
    AgentStoreError,
    ConcurrencyError,
    InvalidInputError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
)
from agentstore.events import Event, build_event
from agentstore.session import Session

log = logging.getLogger("agentstore.postgres")

__all__ = ["Appender"]


_timestamp = attrgetter("timestamp")


def _first(row: Any) -> Any:
    return row[0]


def _columns(
    batch: Sequence[PendingEvent],
) -> tuple[list[str], list[datetime | None], list[str], list[str], list[str]]:
    return (
        [p.id for p in batch],
        [p.timestamp for p in batch],
        [p.type for p in batch],
        [p.payload_json.decode() for p in batch],
        [p.metadata_json.decode() for p in batch],
    )


class Appender:
    """The append and create statements of one schema."""

    def __init__(self, schema: str, snapshots: SnapshotRows) -> None:
        s = f'"{schema}"'
        self._fast = sql_text.FAST.format(s=s, expected="")
        self._fast_expected = sql_text.FAST.format(s=s, expected="AND last_seq = $7")
        # By (shape, expected_seq given, a snapshot carried); the carried snapshot's values
        # come before expected_seq. Shapes: ONE (one event, scalars), LINES (ids, types,
        # payloads and metadata each one text, a line per event; the batch's size last),
        # ARRAYS (text arrays).
        self._now = {
            (shape, expected, carry): (
                sql_text.ONE_NOW if shape == ONE else sql_text.FAST_NOW
            ).format(
                s=s,
                expected=f"AND last_seq = ${10 if carry else 6}" if expected else "",
                snap=sql_text.CARRY.format(s=s) if carry else "",
                columns=sql_text.LINES if shape == LINES else sql_text.ARRAYS,
                n=f"${6 + 4 * carry + expected}::int" if shape == LINES else sql_text.ARRAYS_N,
            )
            for shape in (ONE, LINES, ARRAYS)
            for expected in (False, True)
            for carry in (False, True)
        }
        self._snapshots = snapshots
        self._create = sql_text.CREATE.format(s=s)
        self._lookup = (
            f"SELECT s.last_seq, s.created_at, e.id, e.seq FROM {s}.sessions s "
            f"LEFT JOIN {s}.events e ON e.session_id = s.id AND e.id = ANY($2::text[]) "
            "WHERE s.id = $1"
        )
        self._lock = (
            "SELECT last_seq, last_ts, now() AS now, followed_until > now() AS followed, "
            f"created_at FROM {s}.sessions WHERE id = $1 FOR UPDATE"
        )
        self._by_seq = (
            f"SELECT {EVENT_COLUMNS} FROM {s}.events "
            "WHERE session_id = $1 AND seq = ANY($2::bigint[]) ORDER BY seq"
        )
        self._ids = f"SELECT id, seq FROM {s}.events WHERE session_id = $1 AND id = ANY($2::text[])"
        self._insert = (
            f"INSERT INTO {s}.events "
            "(session_id, seq, id, type, ts, payload_json, metadata_json, batch_end) "
            "SELECT $1, u.seq, u.id, u.type, u.ts, u.p, u.m, "
            "CASE WHEN u.seq < $8 THEN $8 END FROM unnest($2::bigint[], "
            "$3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[]) "
            "AS u(seq, id, ts, type, p, m)"
        )
        self._bump = f"UPDATE {s}.sessions SET last_seq = $2, last_ts = $3 WHERE id = $1"
        self._flights = Flights(schema, self._alone)

    @property
    def shared_flights(self) -> int:
        """Append statements so far that carried appends to several sessions."""
        return self._flights.shared

    async def append(
        self,
        pool: Database,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> tuple[AppendResult, bool]:
        """`Backend.append` (see its rules; the batch is not empty), and whether a follower
        holds a lease on the session (then notify it).

        Driver errors are translated here (as `translated` does) by a plain `except`: on
        every append's path, where a context manager cost two coroutines and the message
        an f-string, made for the rare failure."""
        try:
            if expected_seq is not None and not 0 <= expected_seq < 2**63:
                # No session row can be there (bigint): the general append compares it in
                # Python (ConcurrencyError, or a retry's stored events), as memory does.
                return await self._locked(pool, session_id, batch, expected_seq)
            if len(batch) == 1 or len({p.id for p in batch}) == len(batch):
                # The one-statement append (shared with concurrent appends to other
                # sessions when none brings its own timestamp): rows as `_written` takes
                # them (a third column tells whether the session is followed), [] (nothing
                # written) or None (an id is already stored).
                stamped = (
                    batch[0].timestamp is not None
                    if len(batch) == 1
                    else any(map(_timestamp, batch))  # no Python frame per event
                )
                if stamped:
                    rows = await self._stamped(pool, session_id, batch, expected_seq)
                else:
                    rows = await self._flights.run(pool, session_id, batch, expected_seq)
                if rows:
                    return _written(session_id, batch, rows, stamped), bool(rows[0][2])
                if rows is not None:  # nothing written: look at what is stored
                    done = await self._resolve(pool, session_id, batch, expected_seq)
                    if done is not None:
                        return done, False
            return await self._locked(pool, session_id, batch, expected_seq)
        except CAUGHT as exc:
            if isinstance(exc, AgentStoreError):
                raise
            raise translate(exc, f"appending to session {session_id!r}") from exc

    def _stamped(
        self,
        pool: Database,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> Awaitable[list[Any] | None]:
        """The one-statement append of a batch whose events bring timestamps of their own:
        a `(seq, ts, followed, created_at)` row per event, [] or None (see `append`)."""
        ids, stamps, types, payloads, metas = _columns(batch)
        sql = self._fast if expected_seq is None else self._fast_expected
        args: tuple[Any, ...] = (session_id, ids, stamps, types, payloads, metas)
        if expected_seq is not None:
            args += (expected_seq,)
        return _fetch_unless_stored(pool, sql, *args)

    async def _alone(
        self,
        pool: Database,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> list[Any] | None:
        """The one-statement append of a batch without timestamps of its own, carrying a
        snapshot of the session that waits to be written: as `flights.Alone` answers."""
        events: tuple[Any, ...]
        if len(batch) == 1:
            shape = ONE
            p = batch[0]
            events = (p.id, p.type, p.payload_json.decode(), p.metadata_json.decode())
        else:
            shape, events = _lines(batch)
        expected: tuple[int, ...] = () if expected_seq is None else (expected_seq,)
        if shape == LINES:  # the parameters after the batch's (and a snapshot's): its size
            expected += (len(batch),)
        plain = self._now[shape, expected_seq is not None, False]
        carried = self._snapshots.take(session_id)
        if carried is None:  # `_fetch_unless_stored` inline: a coroutine less per append
            try:
                rows: list[Any] = await pool.fetch(plain, session_id, *events, *expected)
            except pgexc.UniqueViolationError:
                return None
            return rows
        sql = self._now[shape, expected_seq is not None, True]
        again = True  # not written (cancelled, the connection lost): it waits again
        try:
            got = await _fetch_unless_stored(
                pool, sql, session_id, *events, *carried_values(carried), *expected
            )
            again = not got  # no row (expected_seq lost, an id stored): not written
            return got
        except Exception as exc:
            if not refused(exc):
                raise
            # The server refused the statement, for the append's sake or the snapshot's.
            # A snapshot is a cache and never fails an append: it is dropped (as a
            # snapshot written alone is when its statement fails) and the append runs
            # again alone; nothing of the first statement was applied.
            again = False
            log.warning("agentstore: a snapshot of session %s not saved: %r", session_id, exc)
            return await _fetch_unless_stored(pool, plain, session_id, *events, *expected)
        finally:
            self._snapshots.landed(carried, again=again)

    async def _resolve(
        self,
        pool: Database,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> AppendResult | None:
        """After a fast append wrote nothing: the stored events, a conflict, or None (retry
        under the lock: some ids are stored and some are not)."""
        rows = await pool.fetch(self._lookup, session_id, [p.id for p in batch])
        if not rows:
            raise SessionNotFoundError(session_id)
        last_seq = rows[0]["last_seq"]
        known = {r["id"]: r["seq"] for r in rows if r["id"] is not None}
        if len(known) == len(batch):  # an acknowledged append, retried
            stored = await self._events(pool, session_id, [known[p.id] for p in batch])
            return AppendResult(stored, 0, last_seq, rows[0]["created_at"])
        if known:
            return None
        if expected_seq is not None and expected_seq != last_seq:
            raise ConcurrencyError(session_id, expected_seq, last_seq)
        return None  # the session changed in between: do it under the lock

    async def _events(self, conn: Database | Any, session_id: str, seqs: list[int]) -> list[Event]:
        rows = await conn.fetch(self._by_seq, session_id, sorted(set(seqs)))
        by_seq = {r["seq"]: event_from_row(session_id, r) for r in rows}
        return [by_seq[seq] for seq in seqs]

    async def _locked(
        self,
        pool: Database,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> tuple[AppendResult, bool]:
        """The general append: lock the session row, skip stored ids, insert the rest."""
        async with pool.acquire() as conn, conn.transaction():
            head = await conn.fetchrow(self._lock, session_id)
            if head is None:
                raise SessionNotFoundError(session_id)
            rows = await conn.fetch(self._ids, session_id, [p.id for p in batch])
            plan = plan_append(
                session_id,
                batch,
                last_seq=head["last_seq"],
                last_ts=head["last_ts"],
                known_ids={r["id"]: r["seq"] for r in rows},
                now=head["now"],
                expected_seq=expected_seq,
            )
            if plan.new:
                await conn.execute(
                    self._insert,
                    session_id,
                    [seq for _, seq, _ in plan.new],
                    [p.id for p, _, _ in plan.new],
                    [ts for _, _, ts in plan.new],
                    [p.type for p, _, _ in plan.new],
                    [p.payload_json.decode() for p, _, _ in plan.new],
                    [p.metadata_json.decode() for p, _, _ in plan.new],
                    # The batch mark: the last new event's number, on the ones before it.
                    plan.new[-1][1],
                )
                await conn.execute(self._bump, session_id, plan.last_seq, plan.last_ts)
            stored = [seq for index, seq in plan.duplicates.items() if seq <= head["last_seq"]]
            earlier = await self._events(conn, session_id, stored) if stored else []
            by_seq = {e.sequence_number: e for e in earlier}
            for event in plan.events:
                if event is not None:
                    by_seq[event.sequence_number] = event
            events = [
                event if event is not None else by_seq[plan.duplicates[index]]
                for index, event in enumerate(plan.events)
            ]
            result = AppendResult(events, len(plan.new), head["last_seq"], head["created_at"])
            return result, bool(head["followed"])

    async def create(
        self, pool: Database, session: Session, events: Sequence[PendingEvent], now: datetime
    ) -> AppendResult:
        """`Backend.create_session`: the session row and its events in one statement."""
        plan = plan_append(session.id, events, last_seq=0, last_ts=None, known_ids={}, now=now)
        if (end := check_batch_marks(plan.new)) is not None:
            # Kept as given, a copy back to files would refuse the session.
            raise InvalidInputError(f"a batch mark names event {end}, beyond the log")
        values = session_values(session)
        async with translated(f"creating session {session.id!r}"):
            created = await pool.fetchval(
                self._create,
                session.id,
                [p.id for p, _, _ in plan.new],
                [ts for _, _, ts in plan.new],
                [p.type for p, _, _ in plan.new],
                [p.payload_json.decode() for p, _, _ in plan.new],
                [p.metadata_json.decode() for p, _, _ in plan.new],
                *values[1:],
                plan.last_seq,
                plan.last_ts,
                [p.batch_end for p, _, _ in plan.new],  # a copied session's (an import's)
            )
        if not created:
            raise SessionExistsError(session.id)
        by_seq = {e.sequence_number: e for e in plan.events if e is not None}
        out = [
            event if event is not None else by_seq[plan.duplicates[index]]
            for index, event in enumerate(plan.events)
        ]
        return AppendResult(out, len(plan.new), 0, session.created_at)


ONE, LINES, ARRAYS = 0, 1, 2  # the shapes of a batch's columns in `FAST_NOW`, `ONE_NOW`


def _lines(batch: Sequence[PendingEvent]) -> tuple[int, tuple[Any, ...]]:
    """The columns of a batch of several events for `FAST_NOW`: the ids, types, payloads
    and metadata each as one text, a line per event (LINES), which the server splits. A
    text array cost the client about a tenth of an append_many of 100 (asyncpg checks
    every element of an array against two abstract classes in Python, and each payload
    was decoded to a str of its own). JSON text as agentstore writes it (orjson, compact)
    holds no line break, nor does a type or an id it makes; a batch where one does (a
    caller's own ids or types, a backend's caller of its own) goes as text arrays
    (ARRAYS)."""
    ids = "\n".join([p.id for p in batch])
    types = "\n".join([p.type for p in batch])
    payloads = b"\n".join([p.payload_json for p in batch])
    metas = b"\n".join([p.metadata_json for p in batch])
    breaks = ids.count("\n") + types.count("\n") + payloads.count(b"\n") + metas.count(b"\n")
    if breaks == 4 * (len(batch) - 1):
        return LINES, (ids, types, payloads.decode(), metas.decode())
    return ARRAYS, (
        [p.id for p in batch],
        [p.type for p in batch],
        [p.payload_json.decode() for p in batch],
        [p.metadata_json.decode() for p in batch],
    )


def _written(
    session_id: str, batch: Sequence[PendingEvent], rows: list[Any], stamped: bool
) -> AppendResult:
    """The result of a one-statement append that wrote `batch`: from a `(seq, ts, _)` row
    per event (`stamped`: events with timestamps of their own) or one `(base, ts, _)`
    row."""
    if not stamped:
        base, ts = rows[0][0], rows[0][1]
        if len(batch) == 1:
            p = batch[0]
            events = [build_event(p.id, session_id, base + 1, p.type, p.payload, ts, p.metadata)]
        else:
            events = [
                build_event(p.id, session_id, base + k, p.type, p.payload, ts, p.metadata)
                for k, p in enumerate(batch, start=1)
            ]
        return AppendResult(events, len(events), base, rows[0][3])
    if len(rows) != len(batch):  # never partial: one statement
        raise StorageError(f"appending to session {session_id!r}: {len(rows)} rows back")
    rows.sort(key=_first)
    events = [
        build_event(p.id, session_id, r[0], p.type, p.payload, r[1], p.metadata)
        for p, r in zip(batch, rows, strict=True)
    ]
    return AppendResult(events, len(events), rows[0][0] - 1, rows[0][3])


async def _fetch_unless_stored(pool: Database, sql: str, *args: Any) -> list[Any] | None:
    """Run a one-statement append: its rows, or None when an id of it is stored already."""
    try:
        rows: list[Any] = await pool.fetch(sql, *args)
    except pgexc.UniqueViolationError:
        return None
    return rows

"""Reading a session's events: one range scan of the events' primary key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentstore.backends.base import EventFilter
from agentstore.backends.marks import MarkRuns
from agentstore.backends.postgres._driver import translated
from agentstore.backends.postgres.pool import Database
from agentstore.backends.postgres.rows import EVENT_COLUMNS, events_from_rows
from agentstore.errors import SessionNotFoundError
from agentstore.events import Event

__all__ = ["EventReader"]


# bigint's bounds: a number past them is sent as the bound (an event number never gets
# there), not refused by the driver ("value out of int64 range") as a storage error.
_BIGINT = (-(2**63), 2**63 - 1)


def _bigint(value: int) -> int:
    return min(max(value, _BIGINT[0]), _BIGINT[1])


class EventReader:
    """The read statement of one schema, shaped by the filter (each shape is prepared once)."""

    def __init__(self, schema: str) -> None:
        self._s = f'"{schema}"'

    def _sql(self, flt: EventFilter) -> tuple[str, list[Any]]:
        args: list[Any] = [_bigint(max(flt.from_seq, 1))]
        where = ["e.session_id = s.id", "e.seq >= $2"]

        def add(condition: str, value: Any) -> None:
            args.append(value)
            where.append(condition.replace("?", f"${len(args) + 1}"))

        if flt.to_seq is not None:
            add("e.seq <= ?", _bigint(flt.to_seq))
        if flt.types is not None:
            add("e.type = ANY(?::text[])", sorted(flt.types))
        if flt.since is not None:
            add("e.ts >= ?", flt.since)
        if flt.until is not None:
            add("e.ts <= ?", flt.until)
        limit = ""
        if flt.limit is not None:
            args.append(_bigint(flt.limit))
            limit = f"LIMIT ${len(args) + 1}"
        cols = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
        # The session row comes along (LEFT JOIN): an unknown session is told apart from an
        # empty range in the same round trip, and `head` tells a replica's lag (`born`, a
        # replica still showing a session deleted and made again since).
        sql = (
            f"SELECT s.last_seq AS head, {cols}, s.created_at AS born FROM {self._s}.sessions s "
            f"LEFT JOIN LATERAL (SELECT * FROM {self._s}.events e "
            f"WHERE {' AND '.join(where)} ORDER BY e.seq {limit}) e ON true "
            "WHERE s.id = $1 ORDER BY e.seq"
        )
        return sql, args

    async def read(
        self, conn: Database | Any, session_id: str, flt: EventFilter
    ) -> tuple[int, datetime, list[Event]]:
        """Return the session's last sequence number, its creation time and the events
        that pass `flt`."""
        sql, args = self._sql(flt)
        async with translated(f"reading session {session_id!r}"):
            rows = await conn.fetch(sql, session_id, *args)
        if not rows:
            raise SessionNotFoundError(session_id)
        head, born = int(rows[0]["head"]), rows[0]["born"]
        if rows[0]["seq"] is None:
            return head, born, []
        return head, born, events_from_rows(session_id, rows, 1)

    async def batch_marks(self, conn: Database | Any, session_id: str) -> MarkRuns:
        """Return the session's batch marks (see `Backend.batch_marks`), as runs.

        A row a run (consecutive events with the same mark: a batch), not a row an event:
        gaps and islands, the events of a run having `seq - its rank among its mark's`
        in common.
        """
        sql = (
            f"SELECT r.first, r.last, r.mark FROM {self._s}.sessions s LEFT JOIN ("
            "SELECT min(seq) AS first, max(seq) AS last, batch_end AS mark FROM ("
            "SELECT seq, batch_end, seq - row_number() OVER (PARTITION BY batch_end ORDER BY seq) "
            f"AS island FROM {self._s}.events WHERE session_id = $1 AND batch_end IS NOT NULL"
            ") e GROUP BY batch_end, island) r ON true WHERE s.id = $1 ORDER BY r.first"
        )
        async with translated(f"reading session {session_id!r}"):
            rows = await conn.fetch(sql, session_id)
        if not rows:
            raise SessionNotFoundError(session_id)
        runs = MarkRuns()
        for first, last, mark in rows:
            if first is not None:
                runs.add_run(first, last + 1, mark)
        return runs

"""Read-your-writes with a read replica: which reads the replica may answer.

The backend notes every session it wrote (its last sequence number, or that it deleted it,
and for session rows it created or changed, the fields it set). A read of that session goes
to the replica only once the replica shows at least that much; a listing only once the
replica shows every noted write. Confirmed notes are dropped, and so are notes older than
`_FORGET_AFTER` seconds, so a lagging replica only sends a store's reads to the primary for
as long as it lags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from agentstore.backends.postgres._driver import translated
from agentstore.errors import StorageUnavailableError
from agentstore.session import Session

__all__ = ["ReadYourWrites"]

_FORGET_AFTER = 60.0
_MAX_NOTES = 10_000


@dataclass(slots=True)
class _Note:
    seq: int
    """The last sequence number written; -1: deleted."""
    fields: tuple[Any, ...] | None
    """(name, labels, budget) as written, or None when only events were written."""
    at: float


def _fields(session: Session) -> tuple[Any, ...]:
    budget = session.budget.model_dump(mode="json") if session.budget is not None else None
    return (session.name, dict(session.labels), budget)


class ReadYourWrites:
    """The writes of one backend that its replica may not have replayed yet."""

    def __init__(self, schema: str) -> None:
        self._schema = schema
        self._notes: dict[str, _Note] = {}
        # Session id -> its creation time as the primary last said (a head read, an
        # append): a replica still showing a session deleted and made again since (by
        # any host) shows another session, whose events are not this one's.
        self._born: dict[str, datetime] = {}

    def created(self, session_id: str, born: datetime | None) -> None:
        """The primary says the session under this id was created at `born`."""
        if born is None:
            return
        if len(self._born) >= _MAX_NOTES and session_id not in self._born:
            self._born.clear()  # a check, not a note: forgetting only trusts the replica
        self._born[session_id] = born

    def same_session(self, session_id: str, born: datetime | None) -> bool:
        """Whether the replica's session (created at `born`; None: absent there) is the
        one the primary last showed under this id (True when the primary was not asked)."""
        known = self._born.get(session_id)
        return known is None or born == known

    def _put(self, session_id: str, note: _Note) -> None:
        if len(self._notes) >= _MAX_NOTES:
            self._expire()
        self._notes[session_id] = note

    def wrote(self, session_id: str, seq: int, session: Session) -> None:
        """The session row was created or changed (ending at `seq`)."""
        self._put(session_id, _Note(seq, _fields(session), time.monotonic()))

    def appended(self, session_id: str, seq: int) -> None:
        """Events were appended up to `seq`."""
        old = self._notes.get(session_id)
        fields = old.fields if old is not None else None
        self._put(session_id, _Note(max(seq, old.seq if old else 0), fields, time.monotonic()))

    def deleted(self, session_id: str) -> None:
        """The session was deleted."""
        self._put(session_id, _Note(-1, None, time.monotonic()))
        self._born.pop(session_id, None)

    def _expire(self) -> None:
        cutoff = time.monotonic() - _FORGET_AFTER
        for sid in [sid for sid, n in self._notes.items() if n.at < cutoff]:
            del self._notes[sid]

    def replica_caught_up(self, session_id: str, head: int | None) -> bool:
        """Whether the replica's view of a session (`head`: its last_seq there, None:
        absent) shows this backend's writes, as far as a read of events needs."""
        note = self._notes.get(session_id)
        if note is None:
            return True
        ok = head is None if note.seq == -1 else head is not None and head >= note.seq
        if ok and note.fields is None:
            del self._notes[session_id]
        return ok or note.at < time.monotonic() - _FORGET_AFTER

    async def replica_has_all(self, replica: Any) -> bool:
        """Whether the replica shows every noted write (then it may answer a listing)."""
        self._expire()
        if not self._notes:
            return True
        ids = list(self._notes)
        try:
            async with translated("reading the replica"):
                rows = await replica.fetch(
                    "SELECT id, last_seq, name, labels, budget FROM "
                    f'"{self._schema}".sessions WHERE id = ANY($1::text[])',
                    ids,
                )
        except StorageUnavailableError:
            return False
        found = {row["id"]: row for row in rows}
        for sid in ids:
            note = self._notes.get(sid)
            row = found.get(sid)
            if note is None:
                continue
            if row is None:
                ok = note.seq == -1
            else:
                ok = note.seq != -1 and row["last_seq"] >= note.seq
                if ok and note.fields is not None:
                    budget = orjson.loads(row["budget"]) if row["budget"] else None
                    ok = (row["name"], orjson.loads(row["labels"]), budget) == note.fields
            if ok:
                del self._notes[sid]
        return not self._notes

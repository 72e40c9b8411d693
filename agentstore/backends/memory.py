"""The in-memory backend: dicts and lists, gone when the process ends.

It is the reference implementation of the conformance suite. Events are kept as their
encoded JSON lines (as the file backend writes them), so nothing a caller does to an
object it passed in or got back can change what the store holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from agentstore.backends.base import (
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SnapshotRecord,
    plan_append,
)
from agentstore.errors import ConcurrencyError, SessionExistsError, SessionNotFoundError
from agentstore.events import Event, decode_event
from agentstore.session import Session

__all__ = ["MemoryBackend"]


@dataclass(slots=True)
class _Log:
    session: Session
    lines: list[bytes] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    stamps: list[datetime] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    snapshot: SnapshotRecord | None = None


class MemoryBackend(Backend):
    """Keeps everything in this process's memory."""

    never_suspends = True
    """Its coroutines never await, so the store needs no locks around them."""

    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}

    async def close(self) -> None:
        """Drop nothing: a closed in-memory store simply stops being used."""

    def _log(self, session_id: str) -> _Log:
        log = self._logs.get(session_id)
        if log is None:
            raise SessionNotFoundError(session_id)
        return log

    def _session_view(self, log: _Log) -> Session:
        session = log.session.model_copy(deep=True)
        session.event_count = len(log.lines)
        if log.stamps:
            session.updated_at = log.stamps[-1]
        return session

    async def create_session(self, session: Session) -> None:
        if session.id in self._logs:
            raise SessionExistsError(session.id)
        self._logs[session.id] = _Log(session.model_copy(deep=True))

    async def get_session(self, session_id: str) -> Session:
        return self._session_view(self._log(session_id))

    async def list_sessions(
        self, *, limit: int, offset: int, labels: dict[str, str] | None
    ) -> list[Session]:
        logs = [
            log
            for log in self._logs.values()
            if not labels or all(log.session.labels.get(k) == v for k, v in labels.items())
        ]
        logs.sort(key=lambda log: (log.session.created_at, log.session.id), reverse=True)
        return [self._session_view(log) for log in logs[offset : offset + limit]]

    async def delete_session(self, session_id: str) -> None:
        if self._logs.pop(session_id, None) is None:
            raise SessionNotFoundError(session_id)

    async def session_ids(self, prefix: str = "") -> list[str]:
        return sorted(sid for sid in self._logs if sid.startswith(prefix))

    async def session_size(self, session_id: str) -> int:
        log = self._log(session_id)
        return sum(map(len, log.lines)) + len(orjson.dumps(log.session.to_dict()))

    async def last_seq(self, session_id: str) -> int:
        return len(self._log(session_id).lines)

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        log = self._log(session_id)
        last = len(log.lines)
        if expected_seq is not None and expected_seq != last:
            raise ConcurrencyError(session_id, expected_seq, last)
        plan = plan_append(
            session_id,
            batch,
            last_seq=last,
            last_ts=log.stamps[-1] if log.stamps else None,
            known_ids=log.ids,
            now=datetime.now(UTC),
        )
        for line, event in zip(plan.lines, (e for e in plan.events if e is not None), strict=True):
            log.lines.append(line)
            log.types.append(event.type)
            log.stamps.append(event.timestamp)  # type: ignore[arg-type]
        log.ids.update(plan.new_ids)
        events = [
            event if event is not None else self._decode(log, plan.duplicates[index])
            for index, event in enumerate(plan.events)
        ]
        return AppendResult(events, len(plan.lines), last)

    @staticmethod
    def _decode(log: _Log, seq: int) -> Event:
        return decode_event(orjson.loads(log.lines[seq - 1]))

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        log = self._log(session_id)
        stop = len(log.lines) if flt.to_seq is None else min(flt.to_seq, len(log.lines))
        out: list[Event] = []
        types, stamps = flt.types, (flt.since, flt.until)
        for index in range(max(flt.from_seq, 1) - 1, stop):
            if types is not None and log.types[index] not in types:
                continue
            ts = log.stamps[index]
            if stamps[0] is not None and ts < stamps[0]:
                continue
            if stamps[1] is not None and ts > stamps[1]:
                break  # timestamps never go backwards
            out.append(decode_event(orjson.loads(log.lines[index])))
            if flt.limit is not None and len(out) >= flt.limit:
                break
        return out

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        log = self._logs.get(snapshot.session_id)
        if log is not None:
            log.snapshot = SnapshotRecord(
                snapshot.session_id,
                snapshot.version,
                orjson.loads(orjson.dumps(snapshot.state)),
                snapshot.reducer,
                snapshot.created_at,
            )

    async def load_snapshot(self, session_id: str) -> SnapshotRecord | None:
        snap = self._log(session_id).snapshot
        if snap is None:
            return None
        return SnapshotRecord(
            snap.session_id,
            snap.version,
            orjson.loads(orjson.dumps(snap.state)),
            snap.reducer,
            snap.created_at,
        )

"""The in-memory backend: dicts and lists, gone when the process ends.

It is the reference implementation of the conformance suite. Each event is kept as
immutable parts (id, type, timestamp, its payload as JSON bytes, a private copy of its
metadata), so nothing a caller does to an object it passed in or got back can change what
the store holds, and a read builds events without parsing whole JSON lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio.lowlevel
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
from agentstore.events import (
    Event,
    Metadata,
    build_event,
    copy_metadata,
    empty_metadata,
    encode_metadata,
)
from agentstore.session import Session

__all__ = ["MemoryBackend"]


_READ_PAGE = 1000

# The bytes of a file-backend line besides its variable parts (for `session_size`).
_LINE_OVERHEAD = len(
    b'{"id":"","session_id":"","sequence_number":,"type":"","payload":,'
    b'"timestamp":"2026-01-01T00:00:00.000000Z","metadata":}\n'
)


@dataclass(slots=True)
class _Log:
    """One session's events, column by column (index = sequence number - 1)."""

    session: Session
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    stamps: list[datetime] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    metas: list[Metadata | None] = field(default_factory=list)
    """A private copy of each event's metadata; None where it is empty."""
    index: dict[str, int] = field(default_factory=dict)
    """Event id -> sequence number (idempotent appends)."""
    snapshot: SnapshotRecord | None = None

    def event(self, session_id: str, seq: int) -> Event:
        """Build a fresh `Event` (new objects throughout) for sequence number `seq`."""
        i = seq - 1
        meta = self.metas[i]
        return build_event(
            self.ids[i],
            session_id,
            seq,
            self.types[i],
            orjson.loads(self.payloads[i]),
            self.stamps[i],
            empty_metadata() if meta is None else copy_metadata(meta),
        )


class MemoryBackend(Backend):
    """Keeps everything in this process's memory."""

    never_suspends = True
    """Its writes never await, so the store needs no locks around them. (A read of more
    than `_READ_PAGE` events gives the event loop a turn after each page.)"""

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
        session.event_count = len(log.ids)
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
        # What the events would take as file-backend lines (computed only when asked).
        count = len(log.ids)
        size = (_LINE_OVERHEAD + len(session_id) + len(str(count))) * count
        size += sum(map(len, log.ids)) + sum(map(len, log.types)) + sum(map(len, log.payloads))
        size += sum(2 if meta is None else len(encode_metadata(meta)) for meta in log.metas)
        return size + len(orjson.dumps(log.session.to_dict()))

    async def last_seq(self, session_id: str) -> int:
        return len(self._log(session_id).ids)

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        log = self._log(session_id)
        last = len(log.ids)
        if expected_seq is not None and expected_seq != last:
            raise ConcurrencyError(session_id, expected_seq, last)
        if len(batch) == 1:
            return self._append_one(log, session_id, batch[0], last)
        plan = plan_append(
            session_id,
            batch,
            last_seq=last,
            last_ts=log.stamps[-1] if log.stamps else None,
            known_ids=log.index,
            now=datetime.now(UTC),
            encode=False,
        )
        # Nothing above can fail half-way through the batch; commit it all at once.
        for pending, event in zip(batch, plan.events, strict=True):
            if event is not None:
                self._store(log, pending, event.timestamp)  # type: ignore[arg-type]
        log.index.update(plan.new_ids)
        out = [
            event if event is not None else log.event(session_id, plan.duplicates[index])
            for index, event in enumerate(plan.events)
        ]
        return AppendResult(out, len(plan.new_ids), last)

    @staticmethod
    def _store(log: _Log, pending: PendingEvent, ts: datetime) -> None:
        log.ids.append(pending.id)
        log.types.append(pending.type)
        log.stamps.append(ts)
        # orjson's bytes keep their 4 KiB working buffer: copy to the exact size.
        log.payloads.append(bytes(memoryview(pending.payload_json)))
        log.metas.append(
            None if pending.metadata_json == b"{}" else copy_metadata(pending.metadata)
        )

    @staticmethod
    def _append_one(log: _Log, session_id: str, pending: PendingEvent, last: int) -> AppendResult:
        """`append` of a single event: `plan_append`'s rules, without its batch bookkeeping
        (the hot path of an agent loop: about half the cost of the general one here)."""
        pid = pending.id
        earlier = log.index.get(pid)
        if earlier is not None:
            return AppendResult([log.event(session_id, earlier)], 0, last)
        ts = pending.timestamp or datetime.now(UTC)
        stamps = log.stamps
        if stamps and ts < stamps[-1]:
            ts = stamps[-1]
        seq = last + 1
        MemoryBackend._store(log, pending, ts)
        log.index[pid] = seq
        event = build_event(
            pid, session_id, seq, pending.type, pending.payload, ts, pending.metadata
        )
        return AppendResult([event], 1, last)

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        log = self._log(session_id)
        count = len(log.ids)
        stop = count if flt.to_seq is None else min(flt.to_seq, count)
        out: list[Event] = []
        types, since, until, limit = flt.types, flt.since, flt.until, flt.limit
        log_types, stamps = log.types, log.stamps
        ids, payloads, metas = log.ids, log.payloads, log.metas
        loads = orjson.loads
        first = max(flt.from_seq, 1) - 1
        for index in range(first, stop):
            if index > first and not (index - first) % _READ_PAGE:
                # Building 10,000 events takes tens of milliseconds: let the loop breathe.
                # The range was fixed above; appends meanwhile only add events after it.
                await anyio.lowlevel.checkpoint()
            if types is not None and log_types[index] not in types:
                continue
            ts = stamps[index]
            if since is not None and ts < since:
                continue
            if until is not None and ts > until:
                break  # timestamps never go backwards
            meta = metas[index]
            out.append(
                build_event(
                    ids[index],
                    session_id,
                    index + 1,
                    log_types[index],
                    loads(payloads[index]),
                    ts,
                    empty_metadata() if meta is None else copy_metadata(meta),
                )
            )
            if limit is not None and len(out) >= limit:
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

"""The in-memory backend: dicts and lists, gone when the process ends.

It is the reference implementation of the conformance suite. Each session is a
`SessionLog` (`memory_log.py`: the session as JSON, its events as immutable parts, so
nothing a caller does to an object it passed in or got back can change what the store
holds, and a read builds events without parsing whole JSON lines).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import anyio
import orjson

from agentstore._gc import full_collections_deferred, gc_paused
from agentstore._turns import Turns
from agentstore.backends._wakeups import AppendRegistry
from agentstore.backends.base import (
    UNSET,
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SessionChanges,
    SessionPage,
    SessionQuery,
    SnapshotRecord,
    parse_session_cursor,
    plan_append,
    session_cursor,
)
from agentstore.backends.memory_log import SessionLog
from agentstore.errors import ConcurrencyError, SessionExistsError, SessionNotFoundError
from agentstore.events import (
    Event,
    build_event,
    encode_metadata,
)
from agentstore.metadata import (
    SHARED_EMPTY,
    metadata_from_parts,
)
from agentstore.session import Session

__all__ = ["MemoryBackend"]


_READ_PAGE = 128
"""Events built between two looks at the clock (a turn of the loop every `TURN`)."""

# The bytes of a file-backend line besides its variable parts (for `session_size`).
_LINE_OVERHEAD = len(
    b'{"id":"","session_id":"","sequence_number":,"type":"","payload":,'
    b'"timestamp":"2026-01-01T00:00:00.000000Z","metadata":}\n'
)


class MemoryBackend(Backend):
    """Keeps everything in this process's memory.

    Stores that share one `MemoryBackend` instance share its sessions (and wake each
    other's `wait_for_append`), which is how the conformance contract puts two stores on
    one backend.
    """

    shared_across_processes = False
    appends_never_suspend = True  # dicts and lists only: nothing in `append` awaits

    def __init__(self) -> None:
        self._logs: dict[str, SessionLog] = {}
        # While sessions arrive in (created_at, id) order (a store stamps them so), the
        # dict's own order is the listing's: a page is read off its end, not sorted.
        self._in_order = True
        self._newest: tuple[datetime, str] | None = None
        # Stores on other threads (each `SyncStore` runs its own event loop) may share this
        # backend: writes take this lock (never across an await), and wake-ups cross
        # threads through the registry.
        self._mutex = threading.Lock()
        self._key = f"memory:{id(self)}"

    async def close(self) -> None:
        """Drop nothing: a closed in-memory store simply stops being used."""

    def _log(self, session_id: str) -> SessionLog:
        log = self._logs.get(session_id)
        if log is None:
            raise SessionNotFoundError(session_id)
        return log

    def _notify(self, session_id: str) -> None:
        AppendRegistry.notify(self._key, session_id)

    async def create_session(
        self, session: Session, events: Sequence[PendingEvent] = ()
    ) -> AppendResult:
        log = SessionLog.of(session)
        with self._mutex:
            if session.id in self._logs:
                raise SessionExistsError(session.id)
            result = self._append_batch(log, session.id, events, None) if events else None
            # Nothing above can fail half-way, and nothing awaited: it appears whole.
            self._logs[session.id] = log
            key = (session.created_at, session.id)
            if self._newest is not None and key < self._newest:
                self._in_order = False  # imported with an older time: sort from now on
            else:
                self._newest = key
        return result if result is not None else AppendResult([], 0, 0, session.created_at)

    async def get_session(self, session_id: str) -> Session:
        return self._log(session_id).view()

    async def update_session(self, session_id: str, changes: SessionChanges) -> Session:
        log = self._log(session_id)
        update: dict[str, Any] = {}
        if changes.name is not UNSET:
            update["name"] = changes.name
        if changes.labels is not UNSET:
            update["labels"] = dict(changes.labels)
        if changes.budget is not UNSET:
            update["budget"] = changes.budget
        with self._mutex:
            changed = Session.model_validate_json(log.session_json).model_copy(update=update)
            log.session_json = orjson.dumps(changed.to_dict())
            log.labels = dict(changed.labels)
        return log.view()

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        labels = query.labels
        after = parse_session_cursor(query.cursor) if query.cursor else None

        def wanted(log: SessionLog) -> bool:
            return (not labels or all(log.labels.get(k) == v for k, v in labels.items())) and (
                after is None or (log.created_at, log.session_id) < after
            )

        with self._mutex:  # another thread's create must not change the dict mid-walk
            newest_first: Iterable[SessionLog]
            if self._in_order:  # the dict's own order, newest last: read off its end
                newest_first = reversed(self._logs.values())
            else:
                newest_first = sorted(
                    self._logs.values(),
                    key=lambda log: (log.created_at, log.session_id),
                    reverse=True,
                )
            # One more than a page: is there a next page?
            chosen = list(islice(filter(wanted, newest_first), query.limit + 1))
        page = [log.view() for log in chosen[: query.limit]]
        more = len(chosen) > query.limit
        return SessionPage(page, session_cursor(page[-1]) if more and page else None)

    async def delete_session(self, session_id: str, *, expected_seq: int | None = None) -> None:
        with self._mutex:
            log = self._log(session_id)
            if expected_seq is not None and len(log.ids) != expected_seq:
                raise ConcurrencyError(session_id, expected_seq, len(log.ids))
            del self._logs[session_id]
        self._notify(session_id)

    async def find_session_ids(self, prefix: str, limit: int) -> list[str]:
        found = sorted(sid for sid in self._logs if sid.startswith(prefix))
        if prefix in self._logs:
            found.remove(prefix)
            found.insert(0, prefix)
        return found[:limit]

    async def storage_size(self, session_id: str) -> int | None:
        log = self._log(session_id)
        # What the events would take as file-backend lines (computed only when asked).
        count = len(log.ids)
        size = (_LINE_OVERHEAD + len(session_id) + len(str(count))) * count
        size += sum(map(len, log.ids)) + sum(map(len, log.types)) + sum(map(len, log.payloads))
        size += sum(
            2 if meta is None else len(encode_metadata(metadata_from_parts(meta)))
            for meta in log.metas
        )
        return size + len(log.session_json)

    async def last_seq(self, session_id: str) -> int:
        return len(self._log(session_id).ids)

    async def head(self, session_id: str) -> tuple[int, datetime | None]:
        log = self._log(session_id)
        return len(log.ids), log.created_at

    async def wait_for_append(self, session_id: str, after_seq: int) -> int:
        while True:
            # Registered before looking, so an append in between still wakes us.
            with AppendRegistry.waiting(self._key, session_id) as appended:
                last = len(self._log(session_id).ids)
                if last > after_seq:
                    return last
                if appended is None:  # not on asyncio (trio): poll
                    await anyio.sleep(0.01)
                else:
                    await appended.wait()

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        log = self._log(session_id)
        with self._mutex:
            if len(batch) == 1:
                result = self._append_one(log, session_id, batch[0], expected_seq)
            else:
                result = self._append_batch(log, session_id, batch, expected_seq)
        if result.written:
            self._notify(session_id)
        return result

    def _append_batch(
        self,
        log: SessionLog,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> AppendResult:
        last = len(log.ids)
        plan = plan_append(
            session_id,
            batch,
            last_seq=last,
            last_ts=log.stamps[-1] if log.stamps else None,
            known_ids=log.index,
            now=datetime.now(UTC),
            expected_seq=expected_seq,
        )
        # Nothing above can fail half-way through the batch; commit it all at once.
        for pending, _seq, ts in plan.new:
            log.store(pending, ts)
        log.index.update(plan.new_ids)
        out = [
            event if event is not None else log.event(session_id, plan.duplicates[index])
            for index, event in enumerate(plan.events)
        ]
        return AppendResult(out, len(plan.new_ids), last, log.created_at)

    @staticmethod
    def _append_one(
        log: SessionLog, session_id: str, pending: PendingEvent, expected_seq: int | None
    ) -> AppendResult:
        """`append` of a single event: `plan_append`'s rules, without its batch bookkeeping
        (the hot path of an agent loop: about half the cost of the general one here)."""
        last = len(log.ids)
        pid = pending.id
        earlier = log.index.get(pid)
        if earlier is not None:
            return AppendResult([log.event(session_id, earlier)], 0, last, log.created_at)
        if expected_seq is not None and expected_seq != last:
            raise ConcurrencyError(session_id, expected_seq, last)
        ts = pending.timestamp or datetime.now(UTC)
        stamps = log.stamps
        if stamps and ts < stamps[-1]:
            ts = stamps[-1]
        seq = last + 1
        log.store(pending, ts)
        log.index[pid] = seq
        event = build_event(
            pid, session_id, seq, pending.type, pending.payload, ts, pending.metadata
        )
        return AppendResult([event], 1, last, log.created_at)

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        log = self._log(session_id)
        count = len(log.ids)
        stop = count if flt.to_seq is None else min(flt.to_seq, count)
        first = max(flt.from_seq, 1) - 1
        if stop - first <= _READ_PAGE:  # one page, no turn: nothing to defer
            return await self._read(log, session_id, flt, first, stop)
        with full_collections_deferred():  # none walks the events built so far (see _gc)
            return await self._read(log, session_id, flt, first, stop)

    async def _read(
        self, log: SessionLog, session_id: str, flt: EventFilter, first: int, stop: int
    ) -> list[Event]:
        out: list[Event] = []
        types, since, until, limit = flt.types, flt.since, flt.until, flt.limit
        log_types, stamps = log.types, log.stamps
        ids, payloads, metas = log.ids, log.payloads, log.metas
        loads = orjson.loads
        turns = Turns()
        for page in range(first, stop, _READ_PAGE):
            if turns.due():
                # Building 10,000 events takes milliseconds: let the loop breathe. The
                # range was fixed above; appends meanwhile only add events after it.
                await turns.take()
            done = False
            with gc_paused():  # a page of new objects, walked once after it (see metadata)
                for index in range(page, min(page + _READ_PAGE, stop)):
                    if types is not None and log_types[index] not in types:
                        continue
                    ts = stamps[index]
                    if since is not None and ts < since:
                        continue
                    if until is not None and ts > until:
                        done = True  # timestamps never go backwards
                        break
                    meta = metas[index]
                    out.append(
                        build_event(
                            ids[index],
                            session_id,
                            index + 1,
                            log_types[index],
                            loads(payloads[index]),
                            ts,
                            SHARED_EMPTY if meta is None else metadata_from_parts(meta),
                        )
                    )
                    if limit is not None and len(out) >= limit:
                        done = True
                        break
            if done:
                break
        await turns.last()
        return out

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        log = self._logs.get(snapshot.session_id)
        if log is not None:
            log.snapshots[snapshot.reducer] = _copy_snapshot(snapshot)

    async def load_snapshot(self, session_id: str, reducer: str | None) -> SnapshotRecord | None:
        snap = self._log(session_id).snapshots.get(reducer)
        return None if snap is None else _copy_snapshot(snap)


def _copy_snapshot(snap: SnapshotRecord) -> SnapshotRecord:
    """A deep copy through JSON: nothing is shared with the caller's state."""
    return SnapshotRecord(
        snap.session_id,
        snap.version,
        orjson.loads(orjson.dumps(snap.state)),
        snap.reducer,
        snap.created_at,
    )

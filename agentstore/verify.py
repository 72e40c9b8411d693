"""Verification: `Store.verify()` and `agentstore verify`, for every backend.

A check has two halves:

- **Physical**, by the backend (`Backend.verify`): what only it can see. The file backend
  checks every line (JSON, checksum, batch marks, torn tails), the session files and stray
  files, and with `repair=True` performs the one safe repair. The default for any backend
  reads every event through `Backend.read` and checks the rules below (`EventChecker`).
- **Logical**, by the store (`check_snapshots`): the snapshot its reducer made, if any,
  must equal a fold of the events it covers, and never cover more events than the log holds.

The rules every log keeps: sequence numbers 1, 2, 3 ... with no gap or repeat; every event
names its session; no event id twice; timestamps never go backwards. Each problem says where
it is (`file:line` for files, `session <id>` otherwise).

A log that others are appending to can be verified: the snapshot is read before the events,
and a log only grows, so a live append never looks like a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agentstore.backends.types import EventFilter, SessionQuery
from agentstore.errors import AgentStoreError, CorruptLogError
from agentstore.events import Event
from agentstore.state import Reducer, State, last_folded

if TYPE_CHECKING:
    from agentstore.backends.base import Backend

__all__ = [
    "EventChecker",
    "VerifyProblem",
    "VerifyReport",
    "check_snapshots",
    "verify_through_reads",
]

MAX_PROBLEMS_PER_LOG = 100
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    """One thing wrong in a store, and where it is."""

    session_id: str
    """The session it concerns."""
    path: str
    """The file (or, for a backend without files, `session <id>`)."""
    line: int | None
    """1-based line of the log, or None when the problem is not on one line."""
    kind: str
    """One of `torn_tail`, `bad_line`, `checksum`, `sequence`, `session_id`,
    `duplicate_id`, `timestamp`, `batch`, `damaged_tail`, `session_file`, `missing_log`,
    `snapshot`, `unreadable`."""
    message: str
    """What is wrong, in words."""

    @property
    def repairable(self) -> bool:
        """True for the problems `repair=True` fixes: a torn tail, a damaged end of a log."""
        return self.kind in ("torn_tail", "damaged_tail")

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    """What `Store.verify()` found (and, with `repair=True`, what it repaired)."""

    sessions: int = 0
    """How many sessions were checked."""
    events: int = 0
    """How many events (log lines) were checked."""
    problems: list[VerifyProblem] = field(default_factory=list)
    """What is wrong now (after any repair), in session and line order."""
    repairs: list[str] = field(default_factory=list)
    """What `repair=True` did, one sentence each."""
    notes: list[str] = field(default_factory=list)
    """Harmless findings: quarantined tails kept for inspection, leftover temp files."""
    checked: dict[str, int] = field(default_factory=dict)
    """Session id -> how many events its log held when checked (for the snapshot check)."""
    unreadable: set[str] = field(default_factory=set)
    """Sessions whose events could not all be read (no fold is possible)."""

    @property
    def ok(self) -> bool:
        """True if no problem remains."""
        return not self.problems

    def sort(self) -> None:
        """Order the problems by session, file and line."""
        self.problems.sort(key=lambda p: (p.session_id, p.path, p.line or 0))


class EventChecker:
    """Checks one log's events in order, one at a time, against the rules every log keeps.

    Backends with their own format use it for the rules and add their own checks.
    """

    def __init__(self, session_id: str, path: str, problems: list[VerifyProblem]) -> None:
        self.session_id = session_id
        self.path = path
        self.problems = problems
        self.count = 0
        self.last_seq = 0
        self.last_ts: datetime | None = None
        self.ids: set[str] = set()
        self.events_ok = True
        """False once an event could not be read (no fold is possible)."""
        self._reported = 0
        self._odd_one: int | None = None

    def problem(self, line: int | None, kind: str, message: str) -> None:
        """Record a problem (at most `MAX_PROBLEMS_PER_LOG` per log, then one summary)."""
        self._reported += 1
        if self._reported <= MAX_PROBLEMS_PER_LOG:
            self.problems.append(VerifyProblem(self.session_id, self.path, line, kind, message))
        elif self._reported == MAX_PROBLEMS_PER_LOG + 1:
            self.problems.append(
                VerifyProblem(
                    self.session_id,
                    self.path,
                    line,
                    kind,
                    f"more than {MAX_PROBLEMS_PER_LOG} problems in this log; the rest are "
                    "not listed",
                )
            )

    def check(self, line: int | None, event: Event) -> None:
        """Check the next event of the log (`line`: where it is, if the log has lines)."""
        self.count += 1
        seq = event.sequence_number
        expected = self.last_seq + 1
        # After one odd number (1, 2, 7, 4), the next event that resumes the old sequence
        # is not a second problem.
        resumed = self._odd_one is not None and seq == self._odd_one + 1
        if seq != expected and not resumed:
            self.problem(line, "sequence", f"sequence number {seq} where {expected} was expected")
            self._odd_one = expected
        else:
            self._odd_one = None
        self.last_seq = seq
        if event.session_id != self.session_id:
            self.problem(line, "session_id", f"event of session {event.session_id!r} in this log")
        if event.id in self.ids:
            self.problem(line, "duplicate_id", f"event id {event.id} appears twice")
        self.ids.add(event.id)
        ts = event.timestamp
        if ts is not None and self.last_ts is not None and ts < self.last_ts:
            self.problem(
                line,
                "timestamp",
                f"timestamp {ts.isoformat()} is earlier than the previous event's "
                f"({self.last_ts.isoformat()})",
            )
        if ts is not None:
            self.last_ts = ts


async def session_ids_of(backend: Backend, session_id: str | None) -> list[str]:
    """Return the ids to check: `session_id` (which must exist) or every session, sorted."""
    if session_id is not None:
        await backend.get_session(session_id)  # raises SessionNotFoundError
        return [session_id]
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await backend.list_sessions(SessionQuery(limit=_PAGE, cursor=cursor))
        ids.extend(s.id for s in page.sessions)
        if page.next_cursor is None:
            return sorted(ids)
        cursor = page.next_cursor


async def verify_through_reads(backend: Backend, session_id: str | None) -> VerifyReport:
    """The physical check of a backend without a format of its own: read and check."""
    report = VerifyReport()
    for sid in await session_ids_of(backend, session_id):
        report.sessions += 1
        checker = EventChecker(sid, f"session {sid}", report.problems)
        start = 1
        try:
            while True:
                page = await backend.read(sid, EventFilter(from_seq=start, limit=_PAGE))
                for event in page:
                    checker.check(None, event)
                if len(page) < _PAGE:
                    break
                start = page[-1].sequence_number + 1
        except AgentStoreError as exc:
            checker.problem(None, "unreadable", str(exc))
            report.unreadable.add(sid)
        report.events += checker.count
        report.checked[sid] = checker.last_seq
    report.sort()
    return report


async def check_snapshots(
    backend: Backend, report: VerifyReport, reducer: Reducer, reducer_id: str
) -> None:
    """Compare each checked session's snapshot (by this reducer) with a fold of its events."""
    for sid in sorted(report.checked):
        if sid in report.unreadable:
            continue
        where = f"snapshot of session {sid}"
        try:
            snap = await backend.load_snapshot(sid, reducer_id)
            if snap is None:
                continue
            # Read after the snapshot: the log only grows, so a live append cannot make
            # the snapshot look ahead of it.
            head = await backend.last_seq(sid)
        except AgentStoreError:
            continue  # deleted meanwhile, or already reported by the physical check
        if snap.version > head:
            report.problems.append(
                VerifyProblem(
                    sid,
                    where,
                    None,
                    "snapshot",
                    f"covers {snap.version} events but the log holds {head}; the store ignores it",
                )
            )
            continue
        if snap.version < 1:
            continue
        message = await _compare(backend, sid, snap.version, snap.state, reducer)
        if message is not None:
            report.problems.append(VerifyProblem(sid, where, None, "snapshot", message))
    report.sort()


async def _compare(
    backend: Backend, sid: str, version: int, saved_obj: dict[str, object], reducer: Reducer
) -> str | None:
    try:
        saved = State.model_validate(saved_obj)
    except ValidationError as exc:
        return f"not a valid state ({exc.errors()[0]['msg']})"
    state = State(session_id=sid)
    try:
        events = await backend.read(sid, EventFilter(to_seq=version))
    except CorruptLogError:
        return None  # the physical check reports it
    try:
        for event in events:
            state = reducer(state, event)
    except Exception as exc:
        return f"the reducer fails on the events: {exc!r}"
    if saved.model_dump(mode="json") != state.model_dump(mode="json"):
        last = events[-1] if events else None
        if last is None or not last_folded(saved, last, reducer):
            # Of other events than the log's (a tail lost after it was synced, then
            # appended to again): `get_state` reads its last event back and ignores it.
            return (
                f"differs from a fold of events 1..{version}: it is of other events than "
                "the log holds; the store ignores it"
            )
        return (
            f"differs from a fold of events 1..{version} through the reducer; "
            "get_state would be wrong until the next snapshot"
        )
    return None

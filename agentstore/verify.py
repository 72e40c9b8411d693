"""Check a data directory: `Store.verify()` and `agentstore verify`.

For each session (or the one asked for) it checks, without trusting any cache:

- every line of the event log is a JSON object and a valid event;
- sequence numbers are 1, 2, 3 ... (the line number), with no gap and no repeat;
- every event names the session whose log holds it, and no event id appears twice;
- timestamps never go backwards;
- the log does not end with a torn tail (the bytes of an append a crash cut short);
- the session file is readable and names the same session;
- the snapshot, if it was made by the store's reducer, equals a full fold of the events
  it covers (and never covers more events than the log holds).

Each problem says where it is, as `file:line`. `repair=True` performs only the one safe
repair, the one a writer performs when it next opens the log anyway: a torn tail is moved
to `events/<id>.jsonl.torn-<time>` beside the log and the log cut back to its last complete
line. Nothing else is ever changed; other problems need a human.

A log that other processes are appending to can be verified: the check reads the log up to
the last append that was complete when it started, under the log's shared lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import orjson
from pydantic import ValidationError

from agentstore.backends.base import Backend, EventFilter
from agentstore.backends.file import FileBackend, committed_end, quarantine_tail
from agentstore.errors import (
    AgentStoreError,
    CorruptLogError,
    SessionNotFoundError,
    StoreLockedError,
)
from agentstore.events import Event, decode_event
from agentstore.session import Session, validate_session_id
from agentstore.state import Reducer, State

__all__ = ["VerifyProblem", "VerifyReport", "verify_backend"]

_MAX_PROBLEMS_PER_LOG = 100
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    """One thing wrong in a data directory, and where it is."""

    session_id: str
    """The session it concerns."""
    path: str
    """The file (or, for a backend without files, `session <id>`)."""
    line: int | None
    """1-based line of the log, or None when the problem is not on one line."""
    kind: str
    """One of `torn_tail`, `bad_line`, `sequence`, `session_id`, `duplicate_id`,
    `timestamp`, `batch`, `session_file`, `snapshot`, `unreadable`."""
    message: str
    """What is wrong, in words."""

    @property
    def repairable(self) -> bool:
        """True for the one problem `repair=True` fixes: a torn tail."""
        return self.kind == "torn_tail"

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

    @property
    def ok(self) -> bool:
        """True if no problem remains."""
        return not self.problems


async def verify_backend(
    backend: Backend,
    session_id: str | None = None,
    *,
    reducer: Reducer,
    reducer_id: str,
    repair: bool = False,
) -> VerifyReport:
    """Check one session (or all) of a backend; see the module docstring.

    `reducer` and `reducer_id` are the store's: a snapshot made by the same reducer is
    compared with a fold of the events. Raises `SessionNotFoundError` for an unknown
    `session_id` and `StoreLockedError` for `repair=True` on a read-only store.
    """
    if session_id is not None:
        session_id = validate_session_id(session_id)
    if repair and backend.read_only:
        raise StoreLockedError("this store was opened read-only; it cannot repair anything")
    checker = _Checker(reducer, reducer_id)
    if isinstance(backend, FileBackend):
        await anyio.to_thread.run_sync(checker.check_files, backend, session_id, repair)
    else:
        await checker.check_backend(backend, session_id)
    checker.report.problems.sort(key=lambda p: (p.session_id, p.path, p.line or 0))
    return checker.report


def _prefix(events: list[Event], upto: int) -> list[Event]:
    return events[:upto]


class _LogChecker:
    """Checks one log's events in order, one at a time."""

    def __init__(self, session_id: str, path: str, problems: list[VerifyProblem]) -> None:
        self.session_id = session_id
        self.path = path
        self.problems = problems
        self.count = 0
        self.last_seq = 0
        self.last_ts: datetime | None = None
        self.ids: set[str] = set()
        self.events_ok = True
        """False once a line could not be read as an event (no fold is possible)."""
        self._reported = 0
        self._odd_one: int | None = None
        self.open_batch: int | None = None
        """The last sequence number of the `append_many` batch being read, if any."""

    def problem(self, line: int | None, kind: str, message: str) -> None:
        self._reported += 1
        if self._reported <= _MAX_PROBLEMS_PER_LOG:
            self.problems.append(VerifyProblem(self.session_id, self.path, line, kind, message))
        elif self._reported == _MAX_PROBLEMS_PER_LOG + 1:
            self.problems.append(
                VerifyProblem(
                    self.session_id,
                    self.path,
                    line,
                    kind,
                    f"more than {_MAX_PROBLEMS_PER_LOG} problems in this log; the rest are "
                    "not listed",
                )
            )

    def check(self, line: int, event: Event) -> None:
        self.count += 1
        seq = event.sequence_number
        expected = self.last_seq + 1
        # After one odd number (1, 2, 7, 4), the next line that resumes the old sequence
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


class _Checker:
    def __init__(self, reducer: Reducer, reducer_id: str) -> None:
        self.reducer = reducer
        self.reducer_id = reducer_id
        self.report = VerifyReport()
        self.quarantined: set[str] = set()
        """Names of the quarantine files this run made (not worth a note)."""

    # --- file backend (in a worker thread) ------------------------------------------------

    def check_files(self, backend: FileBackend, session_id: str | None, repair: bool) -> None:
        root = backend.root
        if session_id is not None:
            if not (
                backend.session_path(session_id).exists() or backend.log_path(session_id).exists()
            ):
                raise SessionNotFoundError(session_id)
            ids = [session_id]
        else:
            ids = sorted(self._session_ids(root))
        for sid in ids:
            self.report.sessions += 1
            self._check_session_file(backend, sid)
            checker = self._check_log_file(backend, sid, repair)
            if checker is not None:
                self._check_snapshot_file(backend, sid, checker)
        self._note_leftovers(root, session_id)

    @staticmethod
    def _session_ids(root: Path) -> set[str]:
        ids: set[str] = set()
        for directory, suffix in (("sessions", ".json"), ("events", ".jsonl")):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(root / directory):
                    name = entry.name
                    if name.endswith(suffix) and not name.startswith("."):
                        ids.add(name[: -len(suffix)])
        return ids

    def _check_session_file(self, backend: FileBackend, sid: str) -> None:
        path = backend.session_path(sid)
        if not path.exists():
            if backend.log_path(sid).exists():
                self.report.notes.append(
                    f"{backend.log_path(sid)}: a log without a session file (left by a "
                    "deletion that was interrupted); the store does not show it"
                )
            return
        try:
            obj = orjson.loads(path.read_bytes())
            session = Session.model_validate(obj)
        except (OSError, ValueError) as exc:
            detail = str(exc).splitlines()[0]
            self.report.problems.append(
                VerifyProblem(sid, str(path), None, "session_file", f"unreadable: {detail}")
            )
            return
        if session.id != sid:
            self.report.problems.append(
                VerifyProblem(
                    sid,
                    str(path),
                    None,
                    "session_file",
                    f"names session {session.id!r}, not {sid!r}",
                )
            )

    def _check_log_file(self, backend: FileBackend, sid: str, repair: bool) -> _LogChecker | None:
        path = backend.log_path(sid)
        checker = _LogChecker(sid, str(path), self.report.problems)
        flags = os.O_RDWR if repair else os.O_RDONLY
        try:
            fd = os.open(path, flags | os.O_CLOEXEC)
        except FileNotFoundError:
            return checker  # a session with no events yet
        except OSError as exc:
            checker.problem(None, "unreadable", f"cannot open: {exc}")
            return None
        try:
            self._check_log_fd(fd, path, checker, repair)
        except OSError as exc:
            checker.problem(None, "unreadable", f"cannot read: {exc}")
            return None
        finally:
            os.close(fd)
        self.report.events += checker.count
        return checker

    def _check_log_fd(self, fd: int, path: Path, checker: _LogChecker, repair: bool) -> None:
        size, end = self._committed(fd, repair)
        lines = self._scan(fd, path, end, checker)
        if end == size:
            return
        if repair:
            self._repair(fd, path, lines + 1)
        else:
            checker.problem(
                lines + 1,
                "torn_tail",
                f"torn tail: the last {size - end} bytes are an append a crash cut short "
                "(never acknowledged); `verify --repair` moves them aside",
            )

    @staticmethod
    def _committed(fd: int, exclusive: bool) -> tuple[int, int]:
        """Return (size, committed end) of a log, read while no append is in progress."""
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            size = os.fstat(fd).st_size
            return size, committed_end(fd, size)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _repair(self, fd: int, path: Path, torn_line: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            # Look again under the writers' lock: a writer may have repaired it meanwhile.
            size = os.fstat(fd).st_size
            end = committed_end(fd, size)
            if end == size:
                return
            target = quarantine_tail(fd, path, end, size)
            self.quarantined.add(target.name)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self.report.repairs.append(
            f"{path}:{torn_line}: moved a torn tail of {size - end} bytes to {target.name} "
            f"and cut the log back to its last complete line"
        )

    @staticmethod
    def _lines(fd: int, end: int) -> Iterator[bytes]:
        """Yield the lines (without newline) of bytes 0..end of a log."""
        offset = 0
        rest = b""
        while offset < end:
            chunk = os.pread(fd, min(1 << 20, end - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            data = rest + chunk
            lines = data.split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest

    def _scan(self, fd: int, path: Path, end: int, checker: _LogChecker) -> int:
        """Check every line up to `end`; return how many lines there were."""
        lineno = 0
        for raw in self._lines(fd, end):
            lineno += 1
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                checker.problem(lineno, "bad_line", f"not valid JSON ({exc})")
                checker.events_ok = False
                checker.last_seq += 1
                continue
            if not isinstance(obj, dict):
                checker.problem(lineno, "bad_line", "not a JSON object")
                checker.events_ok = False
                checker.last_seq += 1
                continue
            try:
                event = decode_event(obj)
            except CorruptLogError as exc:
                checker.problem(lineno, "bad_line", str(exc))
                checker.events_ok = False
                checker.last_seq += 1
                continue
            checker.check(lineno, event)
            self._check_batch(checker, lineno, event.sequence_number, obj.get("batch_end"))
        if checker.open_batch is not None and lineno:
            checker.problem(
                lineno,
                "batch",
                f"the log ends inside a batch that should end at event {checker.open_batch}",
            )
        return lineno

    @staticmethod
    def _check_batch(checker: _LogChecker, lineno: int, seq: int, mark: object) -> None:
        """Check `append_many` marks: a batch's lines carry its last sequence number."""
        if isinstance(mark, int) and mark > seq:
            if checker.open_batch not in (None, mark):
                checker.problem(
                    lineno,
                    "batch",
                    f"a new batch starts inside the batch that should end at event "
                    f"{checker.open_batch}",
                )
            checker.open_batch = mark
            return
        if checker.open_batch is not None and seq != checker.open_batch:
            checker.problem(
                lineno,
                "batch",
                f"event {seq} ends a batch that should end at event {checker.open_batch}",
            )
        checker.open_batch = None

    def _check_snapshot_file(self, backend: FileBackend, sid: str, checker: _LogChecker) -> None:
        path = backend.snapshot_path(sid)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._snapshot_problem(sid, str(path), f"unreadable ({exc})")
            return
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            state_obj = obj["state"]
            version = obj["version"]
            if not isinstance(state_obj, dict) or not isinstance(version, int):
                raise ValueError("`state` must be an object and `version` an integer")
        except (ValueError, KeyError) as exc:
            self._snapshot_problem(
                sid,
                str(path),
                f"unreadable ({exc}); the store ignores it and rebuilds state from the events",
            )
            return
        reducer = obj.get("reducer")
        self._compare_snapshot(
            sid,
            str(path),
            version,
            state_obj,
            reducer if isinstance(reducer, str) else None,
            checker,
            lambda upto: self._read_events(backend, sid, upto),
        )

    def _read_events(self, backend: FileBackend, sid: str, upto: int) -> list[Event]:
        path = backend.log_path(sid)
        events: list[Event] = []
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as handle:
            for raw in handle:
                if len(events) >= upto or not raw.endswith(b"\n"):
                    break
                events.append(decode_event(orjson.loads(raw)))
        return events

    # --- shared: snapshots ------------------------------------------------------------------

    def _snapshot_problem(self, sid: str, path: str, message: str) -> None:
        self.report.problems.append(VerifyProblem(sid, path, None, "snapshot", message))

    def _compare_snapshot(
        self,
        sid: str,
        path: str,
        version: int,
        state_obj: dict[str, Any],
        reducer: str | None,
        checker: _LogChecker,
        read: Callable[[int], Iterable[Event]],
    ) -> None:
        if version > checker.last_seq:
            self._snapshot_problem(
                sid,
                path,
                f"covers {version} events but the log holds {checker.last_seq}; the store "
                "ignores it",
            )
            return
        if reducer != self.reducer_id:
            maker = f"another reducer ({reducer})" if reducer else "the Go original"
            self.report.notes.append(
                f"{path}: made by {maker}; not compared (the store ignores it and "
                "rebuilds state from the events)"
            )
            return
        if not checker.events_ok or version < 1:
            return
        try:
            saved = State.model_validate(state_obj)
        except ValidationError as exc:
            self._snapshot_problem(sid, path, f"not a valid state ({exc.errors()[0]['msg']})")
            return
        state = State(session_id=sid)
        try:
            for event in read(version):
                state = self.reducer(state, event)
        except Exception as exc:
            self._snapshot_problem(sid, path, f"the reducer fails on the events: {exc!r}")
            return
        if saved.model_dump(mode="json") != state.model_dump(mode="json"):
            self._snapshot_problem(
                sid,
                path,
                f"differs from a fold of events 1..{version} through the reducer; "
                "get_state would be wrong until the next snapshot",
            )

    def _note_leftovers(self, root: Path, session_id: str | None) -> None:
        for directory in ("sessions", "events", "snapshots"):
            with contextlib.suppress(FileNotFoundError):
                for entry in sorted(os.scandir(root / directory), key=lambda e: e.name):
                    name = entry.name
                    if session_id is not None and session_id not in name:
                        continue
                    if ".torn-" in name and name not in self.quarantined:
                        self.report.notes.append(
                            f"{entry.path}: a torn tail quarantined earlier, kept for "
                            "inspection (delete it when done)"
                        )
                    elif name.startswith(".") and ".tmp-" in name:
                        self.report.notes.append(
                            f"{entry.path}: a temporary file (a write in progress, or left "
                            "by a crash and removed when a writer next opens the store)"
                        )

    # --- any other backend, through its interface ------------------------------------------

    async def check_backend(self, backend: Backend, session_id: str | None) -> None:
        if session_id is not None:
            await backend.get_session(session_id)  # raises SessionNotFoundError
            ids = [session_id]
        else:
            ids = []
            offset = 0
            while True:
                page = await backend.list_sessions(limit=_PAGE, offset=offset, labels=None)
                ids.extend(s.id for s in page)
                if len(page) < _PAGE:
                    break
                offset += _PAGE
            ids.sort()
        for sid in ids:
            self.report.sessions += 1
            where = f"session {sid}"
            checker = _LogChecker(sid, where, self.report.problems)
            try:
                events = await backend.read(sid, EventFilter())
            except AgentStoreError as exc:
                checker.problem(None, "unreadable", str(exc))
                continue
            for index, event in enumerate(events, 1):
                checker.check(index, event)
            self.report.events += checker.count
            snap = await backend.load_snapshot(sid)
            if snap is not None:
                self._compare_snapshot(
                    sid,
                    f"snapshot of {where}",
                    snap.version,
                    snap.state,
                    snap.reducer,
                    checker,
                    functools.partial(_prefix, events),
                )

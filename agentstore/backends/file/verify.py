"""`FileBackend.verify`: check a data directory's files, trusting no cache.

For each session (or the one asked for): the session file is readable and names its
session; its log exists if the session had one; every complete line passes its checksum,
is a JSON object and a valid event, and keeps the rules every log keeps
(`agentstore.verify.EventChecker`: sequence numbers, session ids, unique ids, timestamps);
`append_many` batch marks agree; the log does not end with a torn tail. Quarantined tails,
temp files and files that are not agentstore's are listed as notes.

`repair=True` performs two repairs, both moving bytes to a quarantine file (kept, never
deleted) and cutting the log back: a torn tail (what a writer does anyway when it next
opens the log), and a damaged end (at most 8 last lines that fail their checksum, are not
events, or repeat the sequence number before them: what stops writers). Anything else,
such as two swapped lines or damage further in, needs a human. A log others are appending
to can be verified: it is read up to the end of the last append that was complete when
the check began.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import orjson

from agentstore.backends.file import atomic
from agentstore.backends.file.layout import Layout, classify
from agentstore.backends.file.lines import iter_lines
from agentstore.backends.file.sessions import read_session
from agentstore.backends.file.tail import (
    committed_end,
    count_lines,
    damaged_tail,
    quarantine_tail,
)
from agentstore.codec import checksum_ok, decode_object
from agentstore.errors import CorruptLogError, SessionNotFoundError, StorageError
from agentstore.events import decode_event
from agentstore.verify import EventChecker, VerifyProblem, VerifyReport

__all__ = ["verify_files"]


def verify_files(layout: Layout, session_id: str | None, repair: bool) -> VerifyReport:
    """Check one session (or all) of a data directory; see the module docstring."""
    report = VerifyReport()
    if session_id is not None:
        if not (
            os.path.lexists(layout.session_path(session_id))
            or os.path.lexists(layout.log_path(session_id))
        ):
            raise SessionNotFoundError(session_id)
        ids = [session_id]
    else:
        ids = sorted(_session_ids(layout))
    quarantined: set[str] = set()
    for sid in ids:
        report.sessions += 1
        has_log = _check_session_file(layout, sid, report)
        _check_log(layout, sid, has_log, repair, report, quarantined)
        _check_snapshot_files(layout, sid, report)
    _note_leftovers(layout, session_id, report, quarantined)
    report.sort()
    return report


def _session_ids(layout: Layout) -> set[str]:
    ids: set[str] = set()
    for directory, path in (("sessions", layout.sessions_dir), ("events", layout.events_dir)):
        with contextlib.suppress(FileNotFoundError), os.scandir(path) as entries:
            for entry in entries:
                kind, sid = classify(directory, entry.name)
                if kind in ("session", "log") and sid is not None:
                    ids.add(sid)
    return ids


def _check_session_file(layout: Layout, sid: str, report: VerifyReport) -> bool:
    """Check a session file; return whether the session must have a log."""
    path = layout.session_path(sid)
    if not os.path.lexists(path):
        report.notes.append(
            f"{layout.log_path(sid)}: a log without a session file (left by a deletion or a "
            "creation that was interrupted); the store does not show it"
        )
        return False
    try:
        _, has_log, _ = read_session(layout, sid)
    except (CorruptLogError, StorageError) as exc:
        report.problems.append(VerifyProblem(sid, str(path), None, "session_file", str(exc)))
        return False  # unknown: the one problem is the session file
    return has_log


def _check_log(
    layout: Layout,
    sid: str,
    has_log: bool,
    repair: bool,
    report: VerifyReport,
    quarantined: set[str],
) -> None:
    path = layout.log_path(sid)
    checker = EventChecker(sid, str(path), report.problems)
    report.checked[sid] = 0
    try:
        fd = atomic.open_file(path, os.O_RDWR if repair else os.O_RDONLY)
    except FileNotFoundError:
        if has_log and os.path.lexists(layout.session_path(sid)):
            checker.problem(
                None,
                "missing_log",
                "the log is missing, but the session had one: its events are lost unless "
                "it is restored (or delete the session)",
            )
            report.unreadable.add(sid)
        return
    except (OSError, CorruptLogError) as exc:
        checker.problem(None, "unreadable", f"cannot open: {exc}")
        report.unreadable.add(sid)
        return
    try:
        if repair:
            _repair(fd, layout, sid, path, report, quarantined)
        size, end = _committed(fd)
        lines = _scan(fd, end, checker)
        if end != size:
            checker.problem(
                lines + 1,
                "torn_tail",
                f"torn tail: the last {size - end} bytes are an append a crash cut short "
                "(never acknowledged); `verify --repair` moves them aside",
            )
        else:
            start = damaged_tail(fd, path, end)
            if start is not None:
                first = count_lines(fd, start) + 1
                checker.problem(
                    first,
                    "damaged_tail",
                    f"the log ends with {lines - first + 1} damaged line(s) from line {first} "
                    "(complete lines, maybe acknowledged events): writers stop here; "
                    "`verify --repair` moves them to a quarantine file and cuts the log back",
                )
    except OSError as exc:
        checker.problem(None, "unreadable", f"cannot read: {exc}")
        checker.events_ok = False
    finally:
        os.close(fd)
    report.events += checker.count
    report.checked[sid] = checker.last_seq
    if not checker.events_ok:
        report.unreadable.add(sid)


def _check_snapshot_files(layout: Layout, sid: str, report: VerifyReport) -> None:
    """Report snapshot files that cannot be read; note the ones by no known reducer.

    Whether a snapshot equals a fold of the events is the store's check (it has the
    reducer); the store ignores an unreadable snapshot, but a human should know.
    """
    for path in layout.snapshot_paths(sid):
        try:
            obj = orjson.loads(atomic.read_file(path))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            if not isinstance(obj.get("state"), dict) or not isinstance(obj.get("version"), int):
                raise ValueError("`state` must be an object and `version` an integer")
        except (OSError, ValueError, StorageError) as exc:
            report.problems.append(
                VerifyProblem(
                    sid,
                    str(path),
                    None,
                    "snapshot",
                    f"unreadable ({exc}); the store ignores it and rebuilds state from the events",
                )
            )
            continue
        if not isinstance(obj.get("reducer"), str):
            report.notes.append(
                f"{path}: made by the Go original (no reducer recorded); not compared (the "
                "store ignores it and rebuilds state from the events)"
            )


def _committed(fd: int) -> tuple[int, int]:
    """Return (size, committed end) of a log, read while no append is in progress."""
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        size = os.fstat(fd).st_size
        return size, committed_end(fd, size)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _scan(fd: int, end: int, checker: EventChecker) -> int:
    """Check every line up to `end`; return how many lines there were."""
    lineno = 0
    open_batch: int | None = None
    for _, raw in iter_lines(fd, 0, end):
        lineno += 1
        if checksum_ok(raw) is False:
            _bad(checker, lineno, "checksum", "checksum mismatch: the line was changed on disk")
            continue
        try:
            obj = decode_object(raw)
            event = decode_event(obj)
        except CorruptLogError as exc:
            _bad(checker, lineno, "bad_line", str(exc))
            continue
        checker.check(lineno, event)
        open_batch = _check_batch(checker, lineno, event.sequence_number, obj, open_batch)
    if open_batch is not None and lineno:
        checker.problem(
            lineno, "batch", f"the log ends inside a batch that should end at event {open_batch}"
        )
    return lineno


def _bad(checker: EventChecker, lineno: int, kind: str, message: str) -> None:
    checker.problem(lineno, kind, message)
    checker.events_ok = False
    checker.count += 1
    checker.last_seq += 1


def _check_batch(
    checker: EventChecker, lineno: int, seq: int, obj: dict[str, object], open_batch: int | None
) -> int | None:
    """Check `append_many` marks: a batch's lines carry its last sequence number."""
    mark = obj.get("batch_end")
    if isinstance(mark, int) and mark > seq:
        if open_batch not in (None, mark):
            checker.problem(
                lineno,
                "batch",
                f"a new batch starts inside the batch that should end at event {open_batch}",
            )
        return mark
    if open_batch is not None and seq != open_batch:
        checker.problem(
            lineno, "batch", f"event {seq} ends a batch that should end at event {open_batch}"
        )
    return None


def _repair(
    fd: int, layout: Layout, sid: str, path: Path, report: VerifyReport, quarantined: set[str]
) -> None:
    """Move a torn tail, then a damaged end, to quarantine files (under the writers' lock)."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        size = os.fstat(fd).st_size
        end = committed_end(fd, size)
        if end != size:
            line = count_lines(fd, end) + 1
            target = quarantine_tail(fd, layout, sid, end, size)
            quarantined.add(target.name)
            report.repairs.append(
                f"{path}:{line}: moved a torn tail of {size - end} bytes to {target.name} "
                "and cut the log back to its last complete line"
            )
            size = end
        start = damaged_tail(fd, path, size)
        if start is not None:
            first, last = count_lines(fd, start) + 1, count_lines(fd, size)
            target = quarantine_tail(fd, layout, sid, start, size)
            quarantined.add(target.name)
            report.repairs.append(
                f"{path}:{first}: moved {last - first + 1} damaged line(s) ({size - start} "
                f"bytes, lines {first} to {last}: complete lines, maybe acknowledged events; "
                f"inspect them there) to {target.name} and cut the log back to line {first - 1}"
            )
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _note_leftovers(
    layout: Layout, session_id: str | None, report: VerifyReport, quarantined: set[str]
) -> None:
    places = [
        ("sessions", layout.sessions_dir),
        ("events", layout.events_dir),
        ("snapshots", layout.snapshots_dir),
    ]
    for directory, path in places:
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.scandir(path), key=lambda e: e.name):
                kind, sid = classify(directory, entry.name)
                if session_id is not None and sid != session_id:
                    continue
                if kind == "quarantine" and entry.name not in quarantined:
                    report.notes.append(
                        f"{entry.path}: a torn tail (or damaged lines) quarantined earlier, kept "
                        "for inspection (delete it when done)"
                    )
                elif kind == "temp":
                    report.notes.append(
                        f"{entry.path}: a temporary file (a write in progress, or left by a "
                        "crash and removed when a writer next opens the store)"
                    )
                elif kind == "stray":
                    report.notes.append(
                        f"{entry.path}: not a file agentstore writes; it is ignored"
                    )

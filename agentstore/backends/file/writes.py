"""The write path: appending a batch to a log, and writing a new session's first events.

An append runs in one worker thread, holding the log's `flock` from the check of its end
to the sync: catch up with other processes, plan (ids, then `expected_seq`, sequence
numbers, timestamps), encode from the plan, one `write`, one `fdatasync`. Every line of a
multi-event batch but its last carries `batch_end`, so that a batch a crash cut short is
recognised as a torn tail and removed whole.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime

from agentstore.backends.base import (
    AppendResult,
    EventFilter,
    PendingEvent,
    PlannedAppend,
    plan_append,
)
from agentstore.backends.file import atomic
from agentstore.backends.file.layout import temp_path
from agentstore.backends.file.log import Logs, LogView, write_locked
from agentstore.backends.file.scan import CHECKPOINT_EVERY, build_ids, scan_events
from agentstore.backends.file.sessions import SessionIndex, encode_session
from agentstore.backends.file.tail import committed_end
from agentstore.codec import encode_line
from agentstore.errors import CorruptLogError, SessionExistsError, StorageError
from agentstore.events import Event
from agentstore.session import Session

__all__ = [
    "SessionBuilder",
    "append_locked",
    "create_session_files",
    "encode_batch",
    "read_view",
]

logger = logging.getLogger("agentstore")


def encode_batch(session_id: str, new: list[tuple[PendingEvent, int, datetime]]) -> list[bytes]:
    """Encode a plan's new events as lines; all but the last carry `batch_end`."""
    last = new[-1][1] if new else 0
    return [
        encode_line(
            pending.id,
            session_id,
            seq,
            pending.type,
            pending.payload_json,
            ts,
            pending.metadata_json,
            None if seq == last else last,
        )
        for pending, seq, ts in new
    ]


def append_locked(
    logs: Logs,
    view: LogView,
    batch: Sequence[PendingEvent],
    expected_seq: int | None,
    *,
    fsync: bool,
) -> AppendResult:
    """Append a batch to an open log (call with `view.mutex` held)."""
    session_id = view.session_id
    with write_locked(view) as fd:
        logs.check_not_replaced(view)
        if os.fstat(fd).st_size != view.size:
            _repair_or_catch_up(logs, view)
        previous = view.last_seq
        if view.ids is None:
            view.ids = build_ids(fd, view.path, session_id, view.size)
        plan = plan_append(
            session_id,
            batch,
            last_seq=previous,
            last_ts=view.last_ts,
            known_ids=view.ids,
            now=datetime.now(UTC),
            expected_seq=expected_seq,
        )
        if plan.new:
            lines = encode_batch(session_id, plan.new)
            data = b"".join(lines) if len(lines) > 1 else lines[0]
            _write(logs, view, data, fsync=fsync)
            if previous // CHECKPOINT_EVERY != plan.last_seq // CHECKPOINT_EVERY:
                offset = view.size
                for seq, line in enumerate(lines, previous + 1):
                    if seq % CHECKPOINT_EVERY == 0:
                        view.checkpoints[seq] = offset
                    offset += len(line)
            # last_seq before size: `last_seq()` trusts last_seq once size matches.
            view.last_seq = plan.last_seq
            view.last_ts = plan.last_ts
            view.size += len(data)
            view.ids.update(plan.new_ids)
    events: list[Event] = []
    for index, event in enumerate(plan.events):
        if event is None:
            event = _read_one(logs, view, plan.duplicates[index])
        events.append(event)
    return AppendResult(events, len(plan.new), previous)


def _repair_or_catch_up(logs: Logs, view: LogView) -> None:
    """Quarantine a torn tail, then read what other processes appended (hold the lock)."""
    assert view.fd is not None
    size = os.fstat(view.fd).st_size
    end = committed_end(view.fd, size)
    if end < view.size:
        # Only lines this process never accepted can be cut; anything else means the
        # file was changed by something other than an agentstore writer.
        logs.forget(view.session_id, only=view)
        raise StorageError(
            f"{view.path}: lines this process already read were cut by another program"
        )
    if end != size:
        try:
            logs.quarantine(view, end, size)
        except OSError as exc:
            raise StorageError(
                f"{view.path} ends with a torn line that could not be moved aside ({exc}); "
                "nothing was appended"
            ) from exc
    logs.catch_up_locked(view)


def _write(logs: Logs, view: LogView, data: bytes, *, fsync: bool) -> None:
    assert view.fd is not None
    try:
        atomic.write_all(view.fd, data)
        if fsync:
            atomic.sync(view.fd)
    except OSError as exc:
        _undo_failed_write(logs, view)
        reason = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
        raise StorageError(
            f"could not write to {view.path}: {reason}; nothing was appended"
        ) from exc


def _undo_failed_write(logs: Logs, view: LogView) -> None:
    """Cut a failed append back out of the log and drop the file descriptor.

    After a failed fsync the kernel may have dropped the dirty pages, so the descriptor is
    never trusted again (PostgreSQL's "fsyncgate").
    """
    assert view.fd is not None
    try:
        atomic.truncate(view.fd, view.size)
        os.fsync(view.fd)
    except OSError:
        # The bytes stay beyond the committed end; whoever opens the log next treats a
        # partial line or batch as torn (a whole single line would be kept: it was not
        # acknowledged, but it was written, like an append whose reply was lost).
        logger.exception("%s: could not cut back a failed append", view.path)
    # Closing the descriptor (in `forget`) releases the flock too.
    logs.forget(view.session_id, only=view)


def read_view(logs: Logs, view: LogView, flt: EventFilter) -> list[Event]:
    """Read the events of an open log that pass `flt`, up to what this process has seen.

    The file is opened anew (a view's descriptor may be closed by another thread) and
    must be the one the view opened.
    """
    with view.mutex:
        size, checkpoints, ino = view.size, dict(view.checkpoints), view.ino
    if size == 0:
        return []
    try:
        fd = atomic.open_file(view.path, os.O_RDONLY)
    except FileNotFoundError:
        logs.raise_gone(view)
    except OSError as exc:
        raise StorageError(f"cannot read {view.path}: {exc}") from exc
    try:
        if os.fstat(fd).st_ino != ino:
            logs.raise_gone(view)
        events = list(scan_events(fd, view.path, flt, size, checkpoints))
    finally:
        os.close(fd)
    with view.mutex:
        view.checkpoints.update(checkpoints)
    return events


def _read_one(logs: Logs, view: LogView, seq: int) -> Event:
    for event in read_view(logs, view, EventFilter(from_seq=seq, to_seq=seq)):
        return event
    raise CorruptLogError(f"event {seq} is missing", path=str(view.path), line=seq)


class SessionBuilder:
    """Writes a new session's log under a temp name, a page at a time; `finish` makes it real.

    The session exists only once `finish` has renamed the synced log into place and linked
    the session file after it, so a crash (or `abort`) at any point leaves the whole
    session or nothing: a stray temp log, removed when a writer next opens the directory.
    A fork or an import of any size is written this way without holding it all in memory.
    """

    def __init__(self, logs: Logs, session_id: str) -> None:
        self.logs = logs
        self.session_id = session_id
        if os.path.lexists(logs.layout.session_path(session_id)):
            raise SessionExistsError(session_id)  # fail before writing anything
        self.tmp = temp_path(logs.layout.log_path(session_id))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            self.fd = os.open(self.tmp, flags, atomic.FILE_MODE)
        except OSError as exc:
            raise StorageError(f"cannot create session {session_id!r}: {exc}") from exc
        self.last_seq = 0
        self.last_ts: datetime | None = None
        self.ids: dict[str, int] = {}

    def write(self, events: Sequence[PendingEvent]) -> PlannedAppend:
        """Number and write the next page of events (ids already written are skipped)."""
        sid = self.session_id
        plan = plan_append(
            sid,
            events,
            last_seq=self.last_seq,
            last_ts=self.last_ts,
            known_ids=self.ids,
            now=datetime.now(UTC),
        )
        if plan.new:
            try:
                # No batch marks: the log becomes visible whole (renamed) or not at all.
                atomic.write_all(
                    self.fd,
                    b"".join(
                        encode_line(p.id, sid, seq, p.type, p.payload_json, ts, p.metadata_json)
                        for p, seq, ts in plan.new
                    ),
                )
            except OSError as exc:
                raise StorageError(f"cannot create session {sid!r}: {exc}") from exc
        self.ids.update(plan.new_ids)
        self.last_seq, self.last_ts = plan.last_seq, plan.last_ts
        return plan

    def finish(self, index: SessionIndex, session: Session) -> int:
        """Sync the log, rename it into place and link the session file; return its length."""
        sid = self.session_id
        layout = self.logs.layout
        log_path = layout.log_path(sid)
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            with self.logs.directory_lock(exclusive=True):
                if os.path.lexists(layout.session_path(sid)):
                    raise SessionExistsError(sid)
                # Replacing any log a deletion left: until the session file exists, the
                # session does not.
                os.replace(self.tmp, log_path)
                atomic.fsync_dir(layout.events_dir)
                for path in layout.snapshot_paths(sid):
                    os.unlink(path)
                self.logs.forget(sid)
                # Linking is the claim: of several processes creating one id, one succeeds.
                try:
                    atomic.write_file_atomic(
                        layout.session_path(sid), encode_session(session), exclusive=True
                    )
                except FileExistsError:
                    raise
                except OSError:
                    # No session file names the log: take it back (under the directory
                    # lock, nobody else can have claimed the id meanwhile).
                    with contextlib.suppress(OSError):
                        os.unlink(log_path)
                    raise
        except FileExistsError as exc:
            raise SessionExistsError(sid) from exc
        except OSError as exc:
            raise StorageError(f"cannot create session {sid!r}: {exc}") from exc
        index.record(session)
        return self.last_seq

    def abort(self) -> None:
        """Give up: close and remove the temp log (nothing was visible)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def create_session_files(
    logs: Logs, index: SessionIndex, session: Session, events: list[PendingEvent]
) -> AppendResult:
    """Create a session with its first events: the whole session or, after a crash, nothing."""
    builder = SessionBuilder(logs, session.id)
    try:
        plan = builder.write(events)
        builder.finish(index, session)
    except BaseException:
        builder.abort()
        raise
    stored = [e for e in plan.events if e is not None]
    result = [
        e if e is not None else stored[plan.duplicates[i] - 1] for i, e in enumerate(plan.events)
    ]
    return AppendResult(result, len(plan.new), 0)

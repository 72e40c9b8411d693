"""The file backend (the default): a data directory readable with `cat`, `grep` and `jq`.

Layout (the Go original's, so both can share a data directory)::

    <data dir>/
      sessions/<id>.json     the session: id, name, created_at, labels, ...
      events/<id>.jsonl      its log: one JSON event per line, sequence numbers 1..N
      snapshots/<id>.json    the latest snapshot of its state, and the reducer that made it

Appends are O(1): a session's last sequence number and timestamp are read from the tail of
its log once, when the session is first touched, and kept. An append writes its lines with
one `write` and (durability "fsync") one `fdatasync`, in one worker-thread hop, holding an
advisory `flock` on the log so that several processes can share a data directory: if the
log grew since this process last saw it, the new tail is read before sequence numbers are
assigned. Session and snapshot files are written to a temporary file, synced and renamed
(sessions are linked, so that two processes creating the same id cannot both succeed).

Every line of a multi-event batch but its last ends with `"batch_end": <last seq>`, so that
a batch a crash cut short is recognised. A torn tail (a last line without newline or not an
event, or the lines of an unfinished batch) is moved to `events/<id>.jsonl.torn-<time>` and
cut from the log the next time the session is opened for writing; any other line that is
not a valid event raises `CorruptLogError` naming the file and line. Readers take the log's
lock shared while they read what other processes appended, so they see appends whole and
only once synced. Creating and deleting a session, and a writer's first open of a log, hold
a lock on `events/` so that they cannot interleave across processes. See
docs/durability.md for the guarantees.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NoReturn

import aiofiles
import anyio
import orjson

from agentstore.backends._session_index import SessionIndex, read_entry
from agentstore.backends._threads import ThreadPool
from agentstore.backends.base import (
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SnapshotRecord,
    plan_append,
)
from agentstore.errors import (
    ConcurrencyError,
    CorruptLogError,
    SessionExistsError,
    SessionNotFoundError,
    StorageError,
    StoreLockedError,
)
from agentstore.events import (
    Event,
    decode_event,
    format_timestamp,
    legacy_event_id,
    parse_timestamp,
)
from agentstore.session import Session

__all__ = ["Durability", "FileBackend"]

logger = logging.getLogger("agentstore")

Durability = Literal["fsync", "flush"]
"""`"fsync"`: an append returns once its lines are on disk. `"flush"`: once the OS has them."""

_DIR_MODE = 0o700
_FILE_MODE = 0o600
_READ_CHUNK = 1024 * 1024
_CHECKPOINT_EVERY = 1024
_MAX_OPEN_LOGS = 256


# The OS calls an append makes, as module functions so that fault-injection tests can
# replace them (ENOSPC, EIO) without touching the `os` module.
def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _sync(fd: int) -> None:
    os.fdatasync(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Log:
    """What this process knows of one session's log."""

    session_id: str
    path: Path
    fd: int | None
    ino: int
    size: int
    """End of the last complete line."""
    last_seq: int
    last_ts: datetime | None
    ids: dict[str, int] | None = None
    """Event id -> sequence number, built on the first append (for idempotent retries)."""
    checkpoints: dict[int, int] = field(default_factory=dict)
    """Sequence number -> byte offset of its line, every `_CHECKPOINT_EVERY` lines."""
    mutex: threading.RLock = field(default_factory=threading.RLock)
    """Held by a worker thread while it reads or changes the fields above."""

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _decode_line(line: bytes, path: Path, lineno: int) -> Event:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CorruptLogError(f"not valid JSON ({exc})", path=str(path), line=lineno) from exc
    if not isinstance(obj, dict):
        raise CorruptLogError("not a JSON object", path=str(path), line=lineno)
    try:
        event = decode_event(obj)
    except CorruptLogError as exc:
        raise CorruptLogError(str(exc), path=str(path), line=lineno) from exc
    if event.sequence_number != lineno:
        raise CorruptLogError(
            f"sequence number {event.sequence_number} where {lineno} was expected",
            path=str(path),
            line=lineno,
        )
    return event


def _lines_backwards(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield (start offset, bytes) of each line that ends at or before `end`, last first.

    The bytes keep their newline (the first line yielded lacks one if `end` is not at a
    line end). Reads grow from 4 KiB so that a short tail costs one small read and a
    10 MiB line costs O(its size), not O(size squared).
    """
    buf = b""
    base = end  # file offset of buf[0]
    limit = 0  # buf[:limit] is not yet yielded
    step = 4096
    while True:
        if limit:
            nl = buf.rfind(b"\n", 0, limit - 1)
            if nl >= 0:
                yield base + nl + 1, buf[nl + 1 : limit]
                limit = nl + 1
                continue
        if base == 0:
            if limit:
                yield 0, buf[:limit]
            return
        n = min(step, base)
        base -= n
        buf = os.pread(fd, n, base) + buf[:limit]
        limit = len(buf)
        step = min(step * 2, _READ_CHUNK)


def _last_line(fd: int, size: int) -> tuple[int, bytes]:
    """Return (start offset, bytes) of the last line ending at `size`."""
    return next(_lines_backwards(fd, size), (0, b""))


# Every line of a multi-event batch but its last ends with `,"batch_end":<last seq>}`, so
# that a batch cut short by a crash is recognised and removed whole (append_many is all or
# nothing). A complete batch, and every single append, ends with its last line unmarked.
_BATCH_KEY = b',"batch_end":'


def _mark_batch(lines: list[bytes], last_seq: int) -> list[bytes]:
    """Return a batch's lines with every line but the last marked with `batch_end`."""
    if len(lines) < 2:
        return lines
    mark = _BATCH_KEY + str(last_seq).encode() + b"}\n"
    return [line[:-2] + mark for line in lines[:-1]] + [lines[-1]]


def _batch_end(line: bytes) -> int | None:
    """Return the `batch_end` mark of a line (with or without its newline), if any."""
    line = line.rstrip(b"\n")
    at = line.rfind(_BATCH_KEY, max(0, len(line) - 40))
    if at < 0 or not line.endswith(b"}"):
        return None
    digits = line[at + len(_BATCH_KEY) : -1]
    return int(digits) if digits.isdigit() else None


def _truncate(fd: int, size: int) -> None:
    os.ftruncate(fd, size)


@contextlib.contextmanager
def _flocked(fd: int, *, exclusive: bool) -> Iterator[None]:
    """Hold the advisory lock of a log (exclusive: writers; shared: readers).

    A reader whose file system has no `flock` (some network mounts) reads unlocked.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    except OSError as exc:
        if exclusive:
            raise StorageError(f"cannot lock a log for writing: {exc}") from exc
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


def _event_object(line: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) and "sequence_number" in obj else None


def committed_end(fd: int, size: int) -> int:
    """Return where the committed part of a log ends: before its torn tail, if any.

    A crash mid-append leaves at most one append's bytes at the end of a log: a last
    line without a newline, or one that is not a JSON event (a power cut can leave zeros),
    and, for `append_many`, the complete lines of a batch whose last line is missing.
    Those bytes are the torn tail. A complete, valid line is never part of it, except in
    an unfinished batch, which was never acknowledged.
    """
    lines = _lines_backwards(fd, size)
    item = next(lines, None)
    if item is None:
        return 0
    start, line = item
    cut = size
    obj = _event_object(line) if line.endswith(b"\n") else None
    if obj is None:
        cut = start
        item = next(lines, None)
        if item is None:
            return 0
        start, line = item
        obj = _event_object(line)
        if obj is None:
            return cut  # a bad complete line: corruption for `verify`, not a torn tail
    seq = obj.get("sequence_number")
    mark = obj.get("batch_end")
    if isinstance(mark, int) and isinstance(seq, int) and mark > seq:
        cut = start
        for start, line in lines:
            if _batch_end(line) != mark:
                break
            cut = start
    return cut


def quarantine_tail(fd: int, path: Path, end: int, size: int) -> Path:
    """Move bytes `end:size` of the log open as `fd` to `<path>.torn-<UTC time>`.

    The copy is synced before the log is cut, so the bytes exist somewhere at every
    moment. The caller holds the log's lock exclusively. Returns the quarantine file.
    """
    torn = os.pread(fd, size - end, end)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        target = path.with_name(f"{path.name}.torn-{stamp}{suffix}")
        try:
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 1000 quarantines in one microsecond
        raise FileExistsError(errno.EEXIST, "no free quarantine file name", str(path))
    try:
        _write_all(out, torn)
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    os.close(out)
    _fsync_dir(path.parent)
    _truncate(fd, end)
    os.fsync(fd)
    return target


class FileBackend(Backend):
    """Stores sessions as files in a data directory (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "fsync",
        read_only: bool = False,
    ) -> None:
        if durability not in ("fsync", "flush"):
            raise ValueError(f"durability must be 'fsync' or 'flush', not {durability!r}")
        self.root = Path(path)
        self.durability: Durability = durability
        self.read_only = read_only
        self._sessions_dir = self.root / "sessions"
        self._events_dir = self.root / "events"
        self._snapshots_dir = self.root / "snapshots"
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        # Appends and reads run in worker threads, several at once: this guards the
        # dict; each log's own mutex guards the log.
        self._logs_lock = threading.Lock()
        # Creation times and labels of every session, so listing reads one file.
        self._index = SessionIndex(self.root, self._sessions_dir, writable=not read_only)
        # Sessions whose log was deleted under this store while their session file
        # stayed: recreating an empty log would restart them at sequence number 1.
        self._lost: set[str] = set()
        # Appends reach a worker thread in one cheap hop (see _threads.py).
        self._appender = ThreadPool()

    # --- paths and lifecycle ------------------------------------------------------------

    def session_path(self, session_id: str) -> Path:
        """Path of a session's file."""
        return self._sessions_dir / f"{session_id}.json"

    def log_path(self, session_id: str) -> Path:
        """Path of a session's event log."""
        return self._events_dir / f"{session_id}.jsonl"

    def snapshot_path(self, session_id: str) -> Path:
        """Path of a session's snapshot."""
        return self._snapshots_dir / f"{session_id}.json"

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._open_sync)

    def _open_sync(self) -> None:
        if self.read_only:
            if not self.root.is_dir():
                raise StorageError(f"no data directory at {self.root}")
            return
        try:
            for directory in (self.root, self._sessions_dir, self._events_dir):
                directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            self._snapshots_dir.mkdir(mode=_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise StoreLockedError(f"cannot create data directory {self.root}: {exc}") from exc
        if not os.access(self._events_dir, os.W_OK):
            raise StoreLockedError(
                f"data directory {self.root} is not writable; open it with read_only=True"
            )
        self._remove_stale_temp_files()

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files left by crashed writers (their pid no longer runs)."""
        for directory in (self._sessions_dir, self._events_dir, self._snapshots_dir):
            for entry in os.scandir(directory):
                name = entry.name
                if ".tmp-" not in name:
                    continue
                try:
                    pid = int(name.rsplit(".tmp-", 1)[1].split("-", 1)[0])
                    os.kill(pid, 0)
                except ProcessLookupError:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                except (ValueError, IndexError, PermissionError):
                    continue

    async def close(self) -> None:
        self._appender.close()
        with self._logs_lock:
            logs = list(self._logs.values())
            self._logs.clear()
        for log in logs:
            with log.mutex:
                log.close()

    def _writable(self) -> None:
        if self.read_only:
            raise StoreLockedError("this store was opened read-only")

    @contextlib.contextmanager
    def _directory_lock(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the data directory's lock (a `flock` on `events/`).

        Creating and deleting a session take it exclusively, and a writer takes it shared
        while it opens a log for the first time: without it, an append in one process
        could create a log that another process's `create_session` then replaces. A
        read-only store takes no lock.
        """
        if self.read_only:
            yield
            return
        try:
            fd = os.open(self._events_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(f"cannot open {self._events_dir}: {exc}") from exc
        try:
            with _flocked(fd, exclusive=exclusive):
                yield
        finally:
            os.close(fd)

    # --- atomic small files ---------------------------------------------------------------

    def _write_file_atomic(self, path: Path, data: bytes, *, exclusive: bool) -> None:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                os.link(tmp, path)  # fails if the name exists: atomic across processes
            else:
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_dir(path.parent)

    # --- sessions -------------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        self._writable()
        await anyio.to_thread.run_sync(self._create_session_sync, session)

    def _create_session_sync(self, session: Session) -> None:
        with self._directory_lock(exclusive=True):
            self._create_session_locked(session)

    def _create_session_locked(self, session: Session) -> None:
        data = orjson.dumps(session.to_dict(), option=orjson.OPT_INDENT_2)
        try:
            # Linking is the claim: of several processes creating one id, one succeeds.
            self._write_file_atomic(self.session_path(session.id), data, exclusive=True)
        except FileExistsError as exc:
            raise SessionExistsError(session.id) from exc
        except OSError as exc:
            raise StorageError(f"cannot create session {session.id!r}: {exc}") from exc
        # Start an empty log. Replacing (not truncating) any leftover log of a deleted
        # session of the same id means a crash between the two steps cannot resurrect it.
        log_path = self.log_path(session.id)
        tmp = log_path.with_name(f".{log_path.name}.tmp-{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _FILE_MODE)
            os.close(fd)
            os.replace(tmp, log_path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.snapshot_path(session.id))
            _fsync_dir(self._events_dir)
        except OSError as exc:
            raise StorageError(f"cannot create the log of {session.id!r}: {exc}") from exc
        self._forget(session.id)
        self._index.record(session.id, format_timestamp(session.created_at), dict(session.labels))

    def _read_session_file(self, session_id: str) -> dict[str, Any]:
        path = self.session_path(session_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise SessionNotFoundError(session_id) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise StorageError(f"{path}: not a valid session file ({exc})") from exc
        return obj

    def _session_from(self, obj: dict[str, Any], path: Path) -> Session:
        try:
            session = Session.model_validate(obj)
        except ValueError as exc:
            raise StorageError(f"{path}: not a valid session file ({exc})") from exc
        log = self._log_sync(session.id, create=False)
        last_seq, last_ts = 0, None
        if log is not None:
            with log.mutex:
                last_seq, last_ts = log.last_seq, log.last_ts
        session.event_count = last_seq
        session.updated_at = last_ts if last_ts is not None else session.created_at
        return session

    async def get_session(self, session_id: str) -> Session:
        return await anyio.to_thread.run_sync(self._get_session_sync, session_id)

    def _get_session_sync(self, session_id: str) -> Session:
        obj = self._read_session_file(session_id)
        return self._session_from(obj, self.session_path(session_id))

    async def list_sessions(
        self, *, limit: int, offset: int, labels: dict[str, str] | None
    ) -> list[Session]:
        return await anyio.to_thread.run_sync(self._list_sessions_sync, limit, offset, labels)

    def _list_sessions_sync(
        self, limit: int, offset: int, labels: dict[str, str] | None
    ) -> list[Session]:
        entries = self._index.entries(self._index_entry)
        if labels:
            entries = [e for e in entries if all(e[2].get(k) == v for k, v in labels.items())]
        # Newest first; ISO timestamps normalised to one precision sort as strings.
        entries.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
        page: list[Session] = []
        for _, session_id, _ in entries[offset : offset + limit]:
            try:
                page.append(self._get_session_sync(session_id))
            except SessionNotFoundError:
                continue  # deleted since the scan
        return page

    def _index_entry(self, session_id: str) -> tuple[str, dict[str, str]] | None:
        """Read what the session index needs from a session file it does not describe."""
        try:
            obj = orjson.loads(self.session_path(session_id).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None  # being deleted, or not ours: listing must not fail on it
        return read_entry(obj, lambda value: format_timestamp(parse_timestamp(value)))

    async def delete_session(self, session_id: str) -> None:
        self._writable()
        await anyio.to_thread.run_sync(self._delete_session_sync, session_id)

    def _delete_session_sync(self, session_id: str) -> None:
        with self._directory_lock(exclusive=True):
            self._delete_session_locked(session_id)

    def _delete_session_locked(self, session_id: str) -> None:
        self._forget(session_id)
        try:
            # The session file goes first: once it is gone the session is gone, and a
            # crash before the rest is cleaned up leaves only invisible files behind.
            os.unlink(self.session_path(session_id))
        except FileNotFoundError as exc:
            raise SessionNotFoundError(session_id) from exc
        except OSError as exc:
            raise StorageError(f"cannot delete session {session_id!r}: {exc}") from exc
        self._index.forget(session_id)
        for path in (self.log_path(session_id), self.snapshot_path(session_id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for directory in (self._sessions_dir, self._events_dir):
            _fsync_dir(directory)

    async def session_ids(self, prefix: str = "") -> list[str]:
        return await anyio.to_thread.run_sync(self._session_ids_sync, prefix)

    def _session_ids_sync(self, prefix: str) -> list[str]:
        if not self._sessions_dir.is_dir():
            return []
        return sorted(
            entry.name[:-5]
            for entry in os.scandir(self._sessions_dir)
            if entry.name.endswith(".json")
            and entry.name.startswith(prefix)
            and not entry.name.startswith(".")
        )

    async def session_size(self, session_id: str) -> int:
        return await anyio.to_thread.run_sync(self._session_size_sync, session_id)

    def _session_size_sync(self, session_id: str) -> int:
        total = 0
        paths = (
            self.session_path(session_id),
            self.log_path(session_id),
            self.snapshot_path(session_id),
        )
        for index, path in enumerate(paths):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                if index == 0:
                    raise SessionNotFoundError(session_id) from None
        return total

    # --- logs -----------------------------------------------------------------------------

    def _forget(self, session_id: str, only: _Log | None = None) -> None:
        """Drop this process's view of a log (only if it is `only`, when given)."""
        with self._logs_lock:
            log = self._logs.get(session_id)
            if log is None or (only is not None and log is not only):
                return
            del self._logs[session_id]
        with log.mutex:
            log.close()

    def _log_sync(self, session_id: str, *, create: bool = True) -> _Log | None:
        """Return this process's view of a log, opening it on first touch.

        Raises `SessionNotFoundError` if `create` and the session does not exist;
        returns None if not `create` and there is no log.
        """
        with self._logs_lock:
            log = self._logs.get(session_id)
            if log is not None:
                self._logs.move_to_end(session_id)
        if log is not None:
            with log.mutex:
                self._catch_up(log)
            return log
        path = self.log_path(session_id)
        if session_id in self._lost:
            if path.exists() or not self.session_path(session_id).exists():
                self._lost.discard(session_id)  # restored, or the session is gone
            else:
                raise StorageError(
                    f"{path} was deleted under this running store; restore it, or delete "
                    "the session"
                )
        flags = os.O_RDONLY if self.read_only else os.O_RDWR | os.O_APPEND | os.O_CREAT
        # Writers look for the session and open (or create) its log under the directory
        # lock, so that it cannot interleave with another process creating or deleting it.
        with self._directory_lock(exclusive=False):
            if not self.session_path(session_id).exists():
                if create:
                    raise SessionNotFoundError(session_id)
                if not path.exists():
                    return None
            try:
                try:
                    fd = os.open(path, (flags & ~os.O_CREAT) | os.O_CLOEXEC)
                except FileNotFoundError:
                    if self.read_only:
                        return _Log(session_id, path, None, 0, 0, 0, None) if create else None
                    # A session without a log (a crash inside create_session, or a session
                    # of the Go original with no events yet): start one, durably.
                    fd = os.open(path, flags | os.O_CLOEXEC, _FILE_MODE)
                    _fsync_dir(self._events_dir)
            except OSError as exc:
                raise StorageError(f"cannot open {path}: {exc}") from exc
        log = _Log(session_id, path, fd, os.fstat(fd).st_ino, 0, 0, None)
        try:
            self._load_tail(log)
        except BaseException:
            log.close()
            raise
        with self._logs_lock:
            existing = self._logs.get(session_id)
            if existing is not None:  # another thread opened it meanwhile
                log.close()
                return existing
            self._logs[session_id] = log
            self._evict_locked()
        return log

    def _evict_locked(self) -> None:
        """Close the least recently used logs beyond the limit (not those in use)."""
        excess = len(self._logs) - _MAX_OPEN_LOGS
        for session_id in list(self._logs)[:-1]:
            if excess <= 0:
                break
            old = self._logs[session_id]
            if old.mutex.acquire(blocking=False):
                try:
                    del self._logs[session_id]
                    old.close()
                    excess -= 1
                finally:
                    old.mutex.release()

    def _require_log(self, session_id: str) -> _Log:
        log = self._log_sync(session_id, create=True)
        if log is None:  # pragma: no cover - create=True raises instead
            raise SessionNotFoundError(session_id)
        return log

    def _load_tail(self, log: _Log) -> None:
        """Read the last complete line of a freshly opened log (repairing a torn tail)."""
        assert log.fd is not None
        size = os.fstat(log.fd).st_size
        if size == 0:
            return
        # Writers hold the lock exclusively while they write and sync, so under it a
        # partial line can only be a crashed writer's. Readers take it shared (never
        # blocking each other) so that they do not mistake an append in progress for one.
        with _flocked(log.fd, exclusive=not self.read_only):
            size = os.fstat(log.fd).st_size
            end = self._complete_end(log.fd, size)
            if end != size and not self.read_only:
                try:
                    self._quarantine(log, end, size)
                except OSError as exc:
                    # Reads still work (they stop at `end`); the next append retries the
                    # repair and raises if it fails again.
                    logger.warning("%s: could not quarantine a torn tail: %s", log.path, exc)
            log.size = end
            if end:
                start, line = _last_line(log.fd, end)
                event = self._parse_tail_line(log, line)
                log.last_seq = event.sequence_number
                log.last_ts = event.timestamp
                log.checkpoints[event.sequence_number] = start

    def _parse_tail_line(self, log: _Log, line: bytes) -> Event:
        try:
            obj = orjson.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            return decode_event(obj)
        except (ValueError, CorruptLogError) as exc:
            raise CorruptLogError(
                f"the last line is not a valid event ({exc})", path=str(log.path)
            ) from exc

    def _complete_end(self, fd: int, size: int) -> int:
        """Return where the log's committed part ends (see `committed_end`)."""
        return committed_end(fd, size)

    def _quarantine(self, log: _Log, end: int, size: int) -> Path:
        """Move bytes `end:size` of a log to a `.torn-<time>` file beside it (hold the lock)."""
        assert log.fd is not None
        target = quarantine_tail(log.fd, log.path, end, size)
        logger.warning(
            "%s: moved a torn tail (%d bytes, from an interrupted append) to %s",
            log.path,
            size - end,
            target.name,
        )
        return target

    def _catch_up(self, log: _Log) -> None:
        """Read lines another process appended since this process last looked.

        Takes the log's lock shared just long enough to find where its committed part
        ends (an `fstat` and a read of the last line): writers hold it exclusively from
        write to sync, so an append in progress is never read, half-done or not yet
        synced. The committed lines never change, so they are read after the lock is
        released: a reader never holds up writers for longer than that look at the tail.
        Call with `log.mutex` held and without holding the flock (see `_catch_up_locked`).
        """
        if log.fd is None or os.fstat(log.fd).st_size == log.size:
            return
        with _flocked(log.fd, exclusive=False):
            size = os.fstat(log.fd).st_size
            end = committed_end(log.fd, size) if size > log.size else size
        self._catch_up_locked(log, end)

    def _catch_up_locked(self, log: _Log, end: int | None = None) -> None:
        """Read the lines appended after `log.size`, up to `end` (default: the file's end).

        Without `end`, the caller holds the log's flock (shared or exclusive).
        """
        assert log.fd is not None
        size = os.fstat(log.fd).st_size if end is None else end
        if size == log.size:
            return
        if size < log.size:
            self._forget(log.session_id, only=log)
            raise StorageError(
                f"{log.path} shrank from {log.size} to {size} bytes under a running store"
            )
        data = os.pread(log.fd, size - log.size, log.size)
        end = data.rfind(b"\n") + 1
        offset = log.size
        seq, ts = log.last_seq, log.last_ts
        new_ids: list[tuple[str, int]] = []
        new_checkpoints: list[tuple[int, int]] = []
        for raw in data[: end - 1].split(b"\n") if end else ():
            event = _decode_line(raw, log.path, seq + 1)
            seq, ts = event.sequence_number, event.timestamp
            new_ids.append((event.id, seq))
            if seq % _CHECKPOINT_EVERY == 0:
                new_checkpoints.append((seq, offset))
            offset += len(raw) + 1
            mark = _batch_end(raw)
            if mark is not None and mark > seq:
                continue  # inside a batch: take it only once its last line is there
            # Everything up to here is whole: commit it to this process's view.
            log.last_seq, log.last_ts = seq, ts
            if log.ids is not None:
                log.ids.update(new_ids)
            log.checkpoints.update(new_checkpoints)
            new_ids.clear()
            new_checkpoints.clear()
            log.size = offset

    def _check_not_replaced(self, log: _Log) -> None:
        try:
            st = os.stat(log.path)
        except FileNotFoundError:
            self._raise_log_gone(log.session_id, log.path, "deleted")
        if st.st_ino != log.ino:
            self._raise_log_gone(log.session_id, log.path, "replaced")

    def _raise_log_gone(self, session_id: str, path: Path, how: str) -> NoReturn:
        """Drop this process's view of a log that is no longer the file it opened, and raise."""
        self._forget(session_id)
        if not self.session_path(session_id).exists():
            raise SessionNotFoundError(session_id) from None
        if how == "deleted":
            self._lost.add(session_id)
            raise StorageError(
                f"{path} was deleted under a running store (its session file is still "
                "there); this store will not recreate it: restore the log, or delete the "
                "session"
            ) from None
        raise StorageError(
            f"{path} was {how} under a running store (by another program, or the session "
            "was deleted and created again); this process's view of it was dropped: retry"
        ) from None

    def _build_ids(self, log: _Log) -> dict[str, int]:
        """Index the ids of a log's events, once, on the session's first append.

        Our lines start with their id, so it is sliced out of the bytes without parsing
        the line (4x faster than decoding every event, measured on 100,000); a line by the Go
        original (no id) gets its derived id, and an id with escapes is parsed properly.
        """
        ids: dict[str, int] = {}
        prefix = b'{"id":"'
        start = len(prefix)
        seq = 0
        rest = b""
        with open(log.path, "rb") as handle:
            remaining = log.size
            while remaining > 0:
                chunk = handle.read(min(_READ_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    seq += 1
                    if line.startswith(prefix):
                        end = line.find(b'"', start)
                        candidate = line[start:end]
                        if end > 0 and b"\\" not in candidate:
                            ids[candidate.decode()] = seq
                            continue
                    if b'"id":' in line:
                        ids[_decode_line(line, log.path, seq).id] = seq
                    else:
                        ids[legacy_event_id(log.session_id, seq)] = seq
        return ids

    async def last_seq(self, session_id: str) -> int:
        log = self._logs.get(session_id)
        fd = log.fd if log is not None else None
        if log is not None and fd is not None:
            # Unchanged size: nothing was appended (by anyone) since we last looked. The
            # descriptor may be closed by a worker thread meanwhile: then take the slow path.
            try:
                if os.fstat(fd).st_size == log.size:
                    return log.last_seq
            except OSError:
                pass
        return await anyio.to_thread.run_sync(self._last_seq_sync, session_id)

    def _last_seq_sync(self, session_id: str) -> int:
        log = self._require_log(session_id)
        with log.mutex:
            return log.last_seq

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        self._writable()
        return await self._appender.run(self._append_sync, session_id, batch, expected_seq)

    def _append_sync(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        for _ in range(3):
            log = self._require_log(session_id)
            with log.mutex:
                if log.fd is None:  # closed (evicted) meanwhile, or its file was missing
                    self._forget(session_id, only=log)
                    continue
                return self._append_locked(log, session_id, batch, expected_seq)
        raise StorageError(f"cannot open {self.log_path(session_id)} for appending")

    def _append_locked(
        self,
        log: _Log,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
    ) -> AppendResult:
        fd = log.fd
        assert fd is not None
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            self._check_not_replaced(log)
            if os.fstat(fd).st_size != log.size:
                self._repair_or_catch_up(log)
            previous = log.last_seq
            if expected_seq is not None and expected_seq != previous:
                raise ConcurrencyError(session_id, expected_seq, previous)
            if log.ids is None:
                log.ids = self._build_ids(log)
            plan = plan_append(
                session_id,
                batch,
                last_seq=previous,
                last_ts=log.last_ts,
                known_ids=log.ids,
                now=datetime.now(UTC),
            )
            if plan.lines:
                lines = _mark_batch(plan.lines, plan.last_seq)
                self._write_lines(log, b"".join(lines))
                offset = log.size
                for seq, line in zip(range(previous + 1, plan.last_seq + 1), lines, strict=True):
                    if seq % _CHECKPOINT_EVERY == 0:
                        log.checkpoints[seq] = offset
                    offset += len(line)
                # last_seq before size: `last_seq()` trusts last_seq once size matches.
                log.last_seq = plan.last_seq
                log.last_ts = plan.last_ts
                log.size = offset
                log.ids.update(plan.new_ids)
        finally:
            if log.fd is not None:
                fcntl.flock(log.fd, fcntl.LOCK_UN)
        events: list[Event] = []
        for index, event in enumerate(plan.events):
            if event is None:
                seq = plan.duplicates[index]
                event = self._scan_one(log, seq)
            events.append(event)
        return AppendResult(events, len(plan.lines), previous)

    def _repair_or_catch_up(self, log: _Log) -> None:
        """Quarantine a torn tail, then read what other processes appended (hold the lock)."""
        assert log.fd is not None
        size = os.fstat(log.fd).st_size
        end = self._complete_end(log.fd, size)
        if end < log.size:
            # Only lines this process never accepted can be cut; anything else means the
            # file was changed by something other than an agentstore writer.
            self._forget(log.session_id, only=log)
            raise StorageError(
                f"{log.path}: lines this process already read were cut by another program"
            )
        if end != size:
            try:
                self._quarantine(log, end, size)
            except OSError as exc:
                raise StorageError(
                    f"{log.path} ends with a torn line that could not be moved aside ({exc}); "
                    "nothing was appended"
                ) from exc
        self._catch_up_locked(log)

    def _write_lines(self, log: _Log, data: bytes) -> None:
        assert log.fd is not None
        try:
            _write_all(log.fd, data)
            if self.durability == "fsync":
                _sync(log.fd)
        except OSError as exc:
            self._undo_failed_write(log)
            reason = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
            raise StorageError(
                f"could not write to {log.path}: {reason}; nothing was appended"
            ) from exc

    def _undo_failed_write(self, log: _Log) -> None:
        """Cut a failed append back out of the log and reopen the file.

        After a failed fsync the kernel may have dropped the dirty pages, so the file
        descriptor is never trusted again (PostgreSQL's "fsyncgate").
        """
        assert log.fd is not None
        try:
            _truncate(log.fd, log.size)
            os.fsync(log.fd)
        except OSError:
            # The bytes stay beyond the committed end; whoever opens the log next treats
            # a partial line or batch as torn (a whole single line would be kept: it was
            # not acknowledged, but it was written, like an append whose reply was lost).
            logger.exception("%s: could not cut back a failed append", log.path)
        # Closing the descriptor (in `_forget`) releases the flock too.
        self._forget(log.session_id, only=log)

    # --- reading --------------------------------------------------------------------------

    def _scan(
        self, path: Path, from_seq: int, end: int | None, checkpoints: dict[int, int]
    ) -> Iterator[Event]:
        """Yield every event from `from_seq` on, up to byte `end` (None: all)."""
        yield from self._scan_filtered(path, EventFilter(from_seq=from_seq), end, checkpoints)

    def _scan_one(self, log: _Log, seq: int) -> Event:
        for event in self._scan_filtered(
            log.path,
            EventFilter(from_seq=seq, to_seq=seq),
            log.size,
            dict(log.checkpoints),
            ino=log.ino if log.ino else None,
        ):
            return event
        raise CorruptLogError(f"event {seq} is missing", path=str(log.path), line=seq)

    @staticmethod
    def _closer_start(
        fd: int, target: int, start_seq: int, offset: int, checkpoints: dict[int, int]
    ) -> tuple[int, int]:
        """Find where line `target` starts by walking back from a later checkpoint.

        Checkpoints below `target` let a scan skip forward; the log's last line is always
        a checkpoint, so reading the tail of a long log (a cold `get_state` after a
        snapshot, `replay --from-seq`, a follow stream) walks back a few lines instead of
        counting every line from the start.
        """
        above = [(seq, off) for seq, off in checkpoints.items() if seq >= target]
        if not above:
            return start_seq, offset
        above_seq, above_off = min(above)
        steps = above_seq - target
        if steps >= target - start_seq:
            return start_seq, offset
        if steps == 0:
            return target, above_off
        for walked, (line_start, _) in enumerate(_lines_backwards(fd, above_off), start=1):
            if walked == steps:
                checkpoints[target] = line_start
                return target, line_start
        return start_seq, offset

    def _scan_filtered(
        self,
        path: Path,
        flt: EventFilter,
        end: int | None,
        checkpoints: dict[int, int],
        *,
        ino: int | None = None,
    ) -> Iterator[Event]:
        """Yield the events of the log at `path` that pass `flt`, up to byte `end`.

        With `ino`, the file must still be the one this process opened (not deleted or
        replaced since): its byte offsets and sequence numbers are only valid for that one.
        """
        start_seq, offset = 1, 0
        target = max(flt.from_seq, 1)
        for seq, off in checkpoints.items():
            if start_seq < seq <= target:
                start_seq, offset = seq, off
        patterns = (
            tuple(f'"type":"{t}"'.encode() for t in flt.types) if flt.types is not None else None
        )
        count = 0
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below; a generator owns it
        except FileNotFoundError:
            if ino is None:
                return
            self._raise_log_gone(path.name.removesuffix(".jsonl"), path, "deleted")
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        if ino is not None and os.fstat(handle.fileno()).st_ino != ino:
            handle.close()
            self._raise_log_gone(path.name.removesuffix(".jsonl"), path, "replaced")
        with handle:
            if target > start_seq:
                start_seq, offset = self._closer_start(
                    handle.fileno(), target, start_seq, offset, checkpoints
                )
            handle.seek(offset)
            seq = start_seq - 1
            remaining = None if end is None else end - offset
            rest = b""
            data_base = offset  # file offset of data[0]
            while remaining is None or remaining > 0:
                chunk = handle.read(
                    _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
                )
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                data = rest + chunk if rest else chunk
                last_nl = data.rfind(b"\n")
                if last_nl < 0:
                    rest = data
                    continue
                rest = data[last_nl + 1 :]
                pos = 0
                while pos <= last_nl:
                    nl = data.index(b"\n", pos)
                    seq += 1
                    line_start, pos = pos, nl + 1
                    if seq < target:
                        continue
                    if flt.to_seq is not None and seq > flt.to_seq:
                        return
                    line = data[line_start:nl]
                    if (
                        patterns is not None
                        and not any(p in line for p in patterns)
                        and b'"type":"' in line
                    ):
                        continue
                    if seq % _CHECKPOINT_EVERY == 0:
                        checkpoints.setdefault(seq, data_base + line_start)
                    event = _decode_line(line, path, seq)
                    if (
                        flt.until is not None
                        and event.timestamp is not None
                        and event.timestamp > flt.until
                    ):
                        return  # timestamps never go backwards
                    if not flt.matches(event):
                        continue
                    yield event
                    count += 1
                    if flt.limit is not None and count >= flt.limit:
                        return
                data_base += last_nl + 1
            # Bytes after the last newline are a torn or in-progress line: not an event.

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        return await anyio.to_thread.run_sync(self._read_sync, session_id, flt)

    def _read_sync(self, session_id: str, flt: EventFilter) -> list[Event]:
        log = self._require_log(session_id)
        with log.mutex:
            size, checkpoints = log.size, dict(log.checkpoints)
        ino = log.ino if log.ino else None
        events = list(self._scan_filtered(log.path, flt, size, checkpoints, ino=ino))
        with log.mutex:
            log.checkpoints.update(checkpoints)
        return events

    # --- snapshots ------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        if self.read_only:
            return
        data = orjson.dumps(
            {
                "session_id": snapshot.session_id,
                "version": snapshot.version,
                "state": snapshot.state,
                "created_at": format_timestamp(snapshot.created_at),
                "event_count": snapshot.version,
                "reducer": snapshot.reducer,
            },
            option=orjson.OPT_INDENT_2,
        )
        path = self.snapshot_path(snapshot.session_id)
        try:
            await anyio.to_thread.run_sync(self._write_snapshot_sync, path, data)
        except OSError as exc:
            logger.warning("%s: could not save a snapshot (%s); state is unaffected", path, exc)

    def _write_snapshot_sync(self, path: Path, data: bytes) -> None:
        session_id = path.stem
        # Under the directory lock, so that it cannot land after another process deleted
        # the session and created it again: the new session's log is a new file, and a
        # snapshot of the old one would then pass for the new one's state.
        with self._directory_lock(exclusive=False):
            if not self.session_path(session_id).exists():
                return
            log = self._logs.get(session_id)
            if log is not None and log.ino:
                try:
                    if os.stat(self.log_path(session_id)).st_ino != log.ino:
                        return
                except FileNotFoundError:
                    return
            self._write_file_atomic(path, data, exclusive=False)

    async def load_snapshot(self, session_id: str) -> SnapshotRecord | None:
        path = self.snapshot_path(session_id)
        try:
            async with aiofiles.open(path, "rb") as handle:
                raw = await handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("%s: cannot read the snapshot (%s); rebuilding state", path, exc)
            return None
        return self._parse_snapshot(session_id, path, raw)

    async def load_session_and_snapshot(
        self, session_id: str
    ) -> tuple[Session, SnapshotRecord | None]:
        # One hop instead of four (aiofiles costs a hop per call): most of a cold
        # get_state's time on a reopened store was thread round trips.
        return await anyio.to_thread.run_sync(self._session_and_snapshot_sync, session_id)

    def _session_and_snapshot_sync(self, session_id: str) -> tuple[Session, SnapshotRecord | None]:
        session = self._get_session_sync(session_id)
        path = self.snapshot_path(session_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return session, None
        except OSError as exc:
            logger.warning("%s: cannot read the snapshot (%s); rebuilding state", path, exc)
            return session, None
        return session, self._parse_snapshot(session_id, path, raw)

    @staticmethod
    def _parse_snapshot(session_id: str, path: Path, raw: bytes) -> SnapshotRecord | None:
        try:
            obj = orjson.loads(raw)
            state = obj["state"]
            version = obj["version"]
            if not isinstance(state, dict) or not isinstance(version, int):
                raise ValueError("bad types")
            reducer = obj.get("reducer")
            created = parse_timestamp(obj.get("created_at"))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("%s: the snapshot is unreadable (%s); rebuilding state", path, exc)
            return None
        return SnapshotRecord(
            session_id, version, state, reducer if isinstance(reducer, str) else None, created
        )

"""Open logs: this process's view of each, catching up with other processes.

What a view holds is `LogView` (logview.py); the `flock`s taken here and by writers are
in flocks.py.

A session's last sequence number and timestamp are read from the tail of its log once, when
the session is first touched, and kept (appends are O(1)). Writers hold an advisory
`flock` on the log from write to sync; if the log grew since this process last saw it, the
new lines are read (and must run on from the last sequence number) before anything else.
The `events/` directory's own `flock` orders the creation and deletion of sessions against
a writer's first open of a log, across processes.

A view is bound to the file it opened: if the log's link count drops to zero (the session
was deleted, or deleted and created again, by another process), the view is dropped and
the caller gets `SessionNotFoundError`; a log that is missing while its session file says
it has one is corruption, never an empty session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from agentstore.backends.file import atomic
from agentstore.backends.file.flocks import (
    flocked,
    lock_for_writing,
    unlock_if_open,
    write_locked,
)
from agentstore.backends.file.layout import Layout
from agentstore.backends.file.lines import iter_lines
from agentstore.backends.file.logview import LogView
from agentstore.backends.file.scan import CHECKPOINT_EVERY, decode_at
from agentstore.backends.file.sessions import read_session
from agentstore.backends.file.tail import committed_end, quarantine_tail, read_tail
from agentstore.codec import batch_end
from agentstore.errors import (
    CorruptLogError,
    SessionChangedError,
    SessionNotFoundError,
    StorageError,
    StoreClosedError,
)

# `LogView` (logview.py) and the locks (flocks.py) are re-exported: their users import
# them from here, as before they had modules of their own.
__all__ = [
    "LogView",
    "Logs",
    "flocked",
    "lock_for_writing",
    "unlock_if_open",
    "write_locked",
]

logger = logging.getLogger("agentstore")

MAX_OPEN_LOGS = 256


class Logs:
    """This process's open logs of one data directory (thread-safe)."""

    def __init__(self, layout: Layout, *, read_only: bool) -> None:
        self.layout = layout
        self.read_only = read_only
        self._views: OrderedDict[str, LogView] = OrderedDict()
        # Appends and reads run in worker threads, several at once: this guards the dict;
        # each view's own mutex guards the view.
        self._lock = threading.Lock()
        self._closed = False
        _EVERY_LOGS.add(self)

    def _forget_after_fork(self) -> None:
        """In a forked child: drop every view inherited from the parent (see `_after_fork`)."""
        views = list(self._views.values())
        self._views = OrderedDict()
        self._lock = threading.Lock()  # a parent's thread may have held it at the fork
        for view in views:
            view.close()  # the child's copy: the parent's descriptor and lock stay as they are

    def peek(self, session_id: str) -> LogView | None:
        """Return the view of a log if this process has one open (no I/O)."""
        return self._views.get(session_id)

    @contextlib.contextmanager
    def directory_lock(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the data directory's lock (a `flock` on `events/`); none when read-only."""
        if self.read_only:
            yield
            return
        try:
            fd = os.open(self.layout.events_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(f"cannot open {self.layout.events_dir}: {exc}") from exc
        try:
            with flocked(fd, exclusive=exclusive):
                yield
        finally:
            os.close(fd)

    def forget(self, session_id: str, only: LogView | None = None) -> None:
        """Drop this process's view of a log (only if it is `only`, when given)."""
        with self._lock:
            view = self._views.get(session_id)
            if view is None or (only is not None and view is not only):
                return
            del self._views[session_id]
        with view.mutex:
            view.close()

    def close_all(self) -> None:
        """Close every view, waiting for the one in use by an append to finish with it.

        A log opened after this (by an append or a read that was under way) is closed
        again and refused, rather than kept open in a store nobody will close again.
        """
        with self._lock:
            self._closed = True
            views = list(self._views.values())
            self._views.clear()
        for view in views:
            with view.mutex:
                view.close()

    def get(self, session_id: str) -> LogView:
        """Return this process's view of a session's log, opening it on first touch.

        Raises `SessionNotFoundError` for an unknown session and `CorruptLogError` for a
        session whose file is damaged or whose log is missing.
        """
        with self._lock:
            view = self._views.get(session_id)
            if view is not None:
                self._views.move_to_end(session_id)
        if view is not None:
            with view.mutex:
                self.catch_up(view)
            return view
        view = self._open(session_id)
        if view.fd is None:
            return view  # a Go session without a log, read-only: look again next time
        with self._lock:
            existing = self._views.get(session_id)
            if existing is not None or self._closed:
                view.close()
            if self._closed:  # closed while it opened
                raise StoreClosedError("this store was closed; open a new one")
            if existing is not None:  # another thread opened it meanwhile
                return existing
            self._views[session_id] = view
            self._evict_locked()
        return view

    def _open(self, session_id: str) -> LogView:
        path = self.layout.log_path(session_id)
        flags = os.O_RDONLY if self.read_only else os.O_RDWR | os.O_APPEND
        # Under the directory lock, so that it cannot interleave with another process
        # creating or deleting the session.
        with self.directory_lock(exclusive=False):
            session, has_log, _ = read_session(self.layout, session_id)
            try:
                fd: int | None = atomic.open_file(path, flags)
            except FileNotFoundError:
                if has_log:
                    raise CorruptLogError(
                        f"{path} is missing, but session {session_id!r} had a log: restore "
                        "the log, or delete the session",
                        path=str(path),
                    ) from None
                fd = None  # a session of the Go original with no events yet
                if not self.read_only:
                    fd = self._start_log(path, flags)
            except OSError as exc:
                raise StorageError(f"cannot open {path}: {exc}") from exc
        view = LogView(session_id, path, fd, 0, session.created_at)
        if fd is None:
            return view
        try:
            view.ino = os.fstat(fd).st_ino
            self._load_tail(view)
        except BaseException:
            view.close()
            raise
        return view

    def _start_log(self, path: Path, flags: int) -> int:
        try:
            fd = atomic.open_file(path, flags | os.O_CREAT)
            atomic.fsync_dir(self.layout.events_dir)
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc}") from exc
        return fd

    def _evict_locked(self) -> None:
        """Close the least recently used views beyond the limit (not those in use)."""
        excess = len(self._views) - MAX_OPEN_LOGS
        for session_id in list(self._views)[:-1]:
            if excess <= 0:
                break
            old = self._views[session_id]
            if old.mutex.acquire(blocking=False):
                try:
                    del self._views[session_id]
                    old.close()
                    excess -= 1
                finally:
                    old.mutex.release()

    def _load_tail(self, view: LogView) -> None:
        """Read the last complete line of a freshly opened log (repairing a torn tail)."""
        assert view.fd is not None
        if os.fstat(view.fd).st_size == 0:
            return
        # Writers hold the lock exclusively while they write and sync, so under it a
        # partial line can only be a crashed writer's. Readers take it shared (never
        # blocking each other) so that they do not mistake an append in progress for one.
        with flocked(view.fd, exclusive=not self.read_only):
            size = os.fstat(view.fd).st_size
            end = committed_end(view.fd, size)
            if end != size and not self.read_only:
                try:
                    self.quarantine(view, end, size)
                except OSError as exc:
                    # Reads still work (they stop at `end`); the next append retries the
                    # repair and raises if it fails again.
                    logger.warning("%s: could not quarantine a torn tail: %s", view.path, exc)
            view.size = end
            tail = read_tail(view.fd, view.path, end)
            if tail is not None:
                event, start = tail
                view.last_seq, view.last_ts = event.sequence_number, event.timestamp
                view.checkpoints[event.sequence_number] = start

    def quarantine(self, view: LogView, end: int, size: int) -> Path:
        """Move bytes `end:size` of a log to a quarantine file (hold the lock)."""
        assert view.fd is not None
        target = quarantine_tail(view.fd, self.layout, view.session_id, end, size)
        logger.warning(
            "%s: moved a torn tail (%d bytes, from an interrupted append) to %s",
            view.path,
            size - end,
            target.name,
        )
        return target

    def catch_up(self, view: LogView) -> None:
        """Read lines another process appended since this process last looked.

        Takes the log's lock shared just long enough to find where its committed part
        ends (an `fstat` and a read of the last line): writers hold it exclusively from
        write to sync, so an append in progress is never read, half-done or not yet
        synced. Call with `view.mutex` held and without holding the flock.
        """
        if view.fd is None:
            return
        st = os.fstat(view.fd)
        if st.st_nlink == 0:
            self.raise_gone(view)
        if st.st_size == view.size:
            return
        with flocked(view.fd, exclusive=False):
            size = os.fstat(view.fd).st_size
            end = committed_end(view.fd, size) if size > view.size else size
        self.catch_up_locked(view, end)

    def catch_up_locked(self, view: LogView, end: int | None = None) -> None:
        """Read the lines appended after `view.size`, up to `end` (default: the file's end).

        Every new line must hold the next sequence number. Without `end`, the caller
        holds the log's flock (shared or exclusive).
        """
        assert view.fd is not None
        size = os.fstat(view.fd).st_size if end is None else end
        if size == view.size:
            return
        if size < view.size:
            self.forget(view.session_id, only=view)
            raise SessionChangedError(
                f"{view.path} shrank from {view.size} to {size} bytes under a running store"
            )
        seq, ts = view.last_seq, view.last_ts
        offset = view.size
        new_ids: list[tuple[str, int]] = []
        new_checkpoints: list[tuple[int, int]] = []
        for line_start, raw in iter_lines(view.fd, view.size, size):
            event = decode_at(raw, view.path, seq + 1)
            seq, ts = event.sequence_number, event.timestamp
            new_ids.append((event.id, seq))
            if seq % CHECKPOINT_EVERY == 0:
                new_checkpoints.append((seq, line_start))
            offset = line_start + len(raw) + 1
            mark = batch_end(raw)
            if mark is not None and mark > seq:
                continue  # inside a batch: take it only once its last line is there
            # Everything up to here is whole: commit it to this process's view.
            view.last_seq, view.last_ts = seq, ts
            if view.ids is not None:
                for event_id, new_seq in new_ids:
                    view.ids.add(event_id, new_seq)
            view.checkpoints.update(new_checkpoints)
            new_ids.clear()
            new_checkpoints.clear()
            view.size = offset

    def check_not_replaced(self, view: LogView) -> None:
        """Raise if the log's name no longer leads to the file this view opened."""
        try:
            st = os.stat(view.path, follow_symlinks=False)
        except FileNotFoundError:
            self.raise_gone(view)
        if st.st_ino != view.ino:
            self.raise_gone(view)

    def raise_gone(self, view: LogView) -> NoReturn:
        """Drop a view whose file is no longer the session's log, and say why."""
        self.forget(view.session_id)
        path = view.path
        try:
            session, _, _ = read_session(self.layout, view.session_id)
        except SessionNotFoundError:
            raise SessionNotFoundError(view.session_id) from None
        if session.created_at != view.created_at:
            # Deleted and created again (by another process): not the session we knew.
            raise SessionNotFoundError(view.session_id) from None
        if not os.path.lexists(path):
            raise CorruptLogError(
                f"{path} was deleted under a running store (its session file is still "
                "there); this store will not recreate it: restore the log, or delete the "
                "session",
                path=str(path),
            ) from None
        raise SessionChangedError(
            f"{path} was replaced under a running store (by another program); this "
            "process's view of it was dropped: retry"
        ) from None


_EVERY_LOGS: weakref.WeakSet[Logs] = weakref.WeakSet()


def _after_fork() -> None:
    # A forked child's descriptors share their open file descriptions with the parent's,
    # and a `flock` belongs to the description: the parent's lock would not keep the
    # child out (both appended the same sequence numbers), and unlocking in the child
    # would unlock the parent. The parent's mutexes may be held by its threads, which
    # the child lacks. So the child opens each log afresh, with locks and mutexes of
    # its own, on first touch.
    for logs in list(_EVERY_LOGS):
        logs._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork)

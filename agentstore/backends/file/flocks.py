"""The advisory locks (`flock`) that order appends, reads and deletions across processes.

A log's lock is held exclusively by a writer from its write to its sync, and shared by a
reader that needs to know where the committed part of a log ends; the `events/`
directory's lock (taken through `flocked` by `Logs.directory_lock`) orders the creation
and deletion of sessions against a writer's first open of a log. Kept apart from `log.py`
because the append path (`group.py`, deletion in `changes.py`) takes a log's lock
without needing anything else of how logs are opened.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

from agentstore.backends.file.logview import LogView
from agentstore.errors import StorageError

__all__ = ["flocked", "lock_for_writing", "unlock_if_open", "write_locked"]


@contextlib.contextmanager
def flocked(fd: int, *, exclusive: bool) -> Iterator[None]:
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


def lock_for_writing(view: LogView) -> int:
    """Take a log's lock exclusively, as writers do; return its descriptor."""
    fd = view.fd
    assert fd is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:
        raise StorageError(f"cannot lock {view.path} for writing: {exc}") from exc
    return fd


def unlock_if_open(view: LogView, fd: int) -> None:
    """Release the lock taken by `lock_for_writing`, unless the view was dropped since.

    Dropping a view (its file gone or damaged, a failed write) closes the descriptor and
    so releases the lock: then nothing is unlocked, since that number may already belong
    to another file opened by another thread.
    """
    if view.fd == fd:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def write_locked(view: LogView) -> Iterator[int]:
    """Hold a log's lock exclusively, as writers do; yield its descriptor."""
    fd = lock_for_writing(view)
    try:
        yield fd
    finally:
        unlock_if_open(view, fd)

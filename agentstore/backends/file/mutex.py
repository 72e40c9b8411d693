"""The mutex of a log's view: reentrant like `threading.RLock`, and able to change hands.

A flight committed on an event loop's thread (`loopcommits.py`) holds its log's mutex from
its write to its landing, and the landing is usually, but not always, that loop's: when
the loop is late (blocked by a synchronous call, stopped, or gone with its thread), the
watch thread (`loopwatch.py`) lands it. An `RLock` can only be released by the thread
that took it, so the flight's hold would have outlived a loop that never ran again, and
every other thread needing the log waited for ever. Here the thread that writes a flight
`detach`es its hold (held, by no thread: not reentrant for it any more), and the one that
lands it `attach`es the hold first, then releases it as usual.
"""

from __future__ import annotations

import threading
from types import TracebackType

__all__ = ["ViewMutex"]

_DETACHED = -1
"""The owner of a hold given up by its thread (no thread has this ident)."""


class ViewMutex:
    """A reentrant mutex whose hold a thread can give up to another (see the module)."""

    __slots__ = ("_count", "_lock", "_owner")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner = 0
        self._count = 0

    def acquire(self, blocking: bool = True) -> bool:
        """Take the mutex (again, if this thread holds it); False if it would wait."""
        me = threading.get_ident()
        if self._owner == me:
            self._count += 1
            return True
        if not self._lock.acquire(blocking):
            return False
        self._owner = me
        self._count = 1
        return True

    def acquire_alone(self) -> bool:
        """Take the mutex if nobody holds it, this thread included; never wait."""
        if self._owner == threading.get_ident() or not self._lock.acquire(False):
            return False
        self._owner = threading.get_ident()
        self._count = 1
        return True

    def release(self) -> None:
        """Release one hold of this thread."""
        if self._owner != threading.get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = 0
            self._lock.release()

    def detach(self) -> None:
        """Give up this thread's only hold without releasing it (see `attach`)."""
        if self._owner != threading.get_ident() or self._count != 1:
            raise RuntimeError("cannot detach a lock this thread does not hold once")
        self._owner = _DETACHED

    def attach(self) -> None:
        """Make a detached hold this thread's (then `release` it as any other)."""
        if self._owner != _DETACHED:
            raise RuntimeError("the lock has no detached hold")
        self._owner = threading.get_ident()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

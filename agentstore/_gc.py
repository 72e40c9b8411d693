"""The cyclic garbage collector while the store builds thousands of events.

Decoding a page of events makes thousands of container objects (each event and its field
dict); with the collector on, it walks them again every few hundred, and its oldest
generation (the whole heap) every few thousand: 20-40% of a replay. Two controls:

- `gc_paused`: no collection while a page is built; one young collection after it.
- `full_collections_deferred`: no full collection while a whole read runs (young ones go
  on between its pages). A full collection walks every object the process holds,
  including the events this read has built so far: 10,000 events are 20,000 objects,
  3-6 ms here in one piece, which is a stall of the event loop however short the read's
  turns are (`agentstore._turns`). Deferred, it runs after the read, usually once its
  caller has dropped the events, when it is cheap.

Both are process-wide switches (`gc.disable`, `gc.set_threshold`) used from several threads
at once (the loop, the file backend's workers), so each is counted under a lock: the first
user in records the collector's setting, the last one out restores it.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from contextvars import ContextVar

__all__ = ["full_collections_deferred", "gc_paused"]

_NEVER = 1 << 30
"""A third threshold no count reaches: the oldest generation is never collected on its own
(an explicit `gc.collect()` still collects it)."""

_OVERDUE = 10
"""How many full collections a deferral may put off: reads that overlap without end (a
server whose clients keep reading) never leave the process outside a deferral, so a read
that starts with this many due collects the oldest generation first, or the cyclic garbage
of a long-running process would never be freed."""


class _Counted:
    """A process-wide change of the collector, made by the first user in and undone by the
    last one out, whichever threads they run on (`with switch():`)."""

    def __init__(self, begin: Callable[[], None], end: Callable[[], None]) -> None:
        self._begin, self._end = begin, end
        self.users = 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with _lock:
            if self.users == 0:
                self._begin()
            self.users += 1
        try:
            yield
        finally:
            with _lock:
                if self.users:  # 0 only in a child forked inside (reset there)
                    self.users -= 1
                    if self.users == 0:
                        self._end()

    def reset(self) -> None:
        """In a forked child: undo the change if a user held it (none lives on there)."""
        if self.users:
            self._end()
        self.users = 0


_lock = threading.Lock()
_was_enabled = False
_saved_threshold2 = 10


def _disable() -> None:
    global _was_enabled
    _was_enabled = gc.isenabled()
    gc.disable()


def _reenable() -> None:
    if _was_enabled:  # a program that disabled the collector keeps it disabled
        gc.enable()


def _defer() -> None:
    global _saved_threshold2
    first, second, third = gc.get_threshold()
    # Out of reach with no deferral on: a program saved the setting during one and put it
    # back after; the program's own is the one saved then.
    if third != _NEVER:
        _saved_threshold2 = third
    gc.set_threshold(first, second, _NEVER)


def _restore_threshold2() -> None:
    first, second, third = gc.get_threshold()
    if third == _NEVER:  # a threshold the program set meanwhile wins
        gc.set_threshold(first, second, _saved_threshold2)


_pause = _Counted(_disable, _reenable)
_deferral = _Counted(_defer, _restore_threshold2)


def gc_paused() -> AbstractContextManager[None]:
    """Pause the cyclic garbage collector for the block (nestable, any thread).

    The collector is turned back on when the last pause in the process ends, and only if
    it was on when the first began: a program that disabled it keeps it disabled.
    """
    return _pause()


def full_collections_deferred() -> AbstractContextManager[None]:
    """Keep the collector from walking the whole heap during the block (nestable).

    Young collections go on; the oldest generation's threshold is set out of reach and
    put back when the last deferral in the process ends, unless the program changed it
    meanwhile (its setting wins). Meant for a read that takes turns of the loop: held
    across its awaits, it must end in the same task (a `with` around the read). Reads
    that always overlap put off at most `_OVERDUE` full collections.
    """
    return _deferred()


_inside: ContextVar[bool] = ContextVar("agentstore_gc_deferred", default=False)
"""True within a deferral of this task (or thread): a read's own nested deferral (a fold's
page read) never collects."""


@contextmanager
def _deferred() -> Iterator[None]:
    with _deferral():
        # The count of the oldest generation goes on rising while its threshold is out of
        # reach (one a young collection). Overdue while other reads hold the deferral
        # (they may never all end at once), it is collected as this read starts, before
        # it has built anything; never in a read's own nested deferral.
        if (
            _deferral.users > 1
            and not _inside.get()
            and gc.get_count()[2] >= _OVERDUE * max(_saved_threshold2, 1)
            and gc.isenabled()
            and gc.get_threshold()[2] == _NEVER
        ):
            gc.collect()
        token = _inside.set(True)
        try:
            yield
        finally:
            with suppress(ValueError):  # ended in another context (closed by the GC)
                _inside.reset(token)


def _after_fork() -> None:
    # Only the forking thread lives on in the child: pauses and deferrals held by the
    # others never end there.
    global _lock
    _lock = threading.Lock()
    _pause.reset()
    _deferral.reset()


os.register_at_fork(after_in_child=_after_fork)

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
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["full_collections_deferred", "gc_paused"]

_lock = threading.Lock()
_pauses = 0
_resume = False
_defers = 0
_saved_threshold2 = 10

_NEVER = 1 << 30
"""A third threshold no count reaches: the oldest generation is never collected on its own
(an explicit `gc.collect()` still collects it)."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (nestable, any thread).

    The collector is turned back on when the last pause in the process ends, and only if
    it was on when the first began: a program that disabled it keeps it disabled.
    """
    global _pauses, _resume
    with _lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            if _pauses:  # 0 only in a child forked inside this pause (reset there)
                _pauses -= 1
                if _pauses == 0 and _resume:
                    gc.enable()


@contextmanager
def full_collections_deferred() -> Iterator[None]:
    """Keep the collector from walking the whole heap during the block (nestable).

    Young collections go on; the oldest generation's threshold is set out of reach and
    put back when the last deferral in the process ends, unless the program changed it
    meanwhile (its setting wins). Meant for a read that takes turns of the loop: held
    across its awaits, it must end in the same task (a `with` around the read).
    """
    global _defers, _saved_threshold2
    with _lock:
        if _defers == 0:
            first, second, third = gc.get_threshold()
            _saved_threshold2 = third
            gc.set_threshold(first, second, _NEVER)
        _defers += 1
    try:
        yield
    finally:
        with _lock:
            if _defers:  # 0 only in a child forked inside a deferral (reset there)
                _defers -= 1
                if _defers == 0:
                    _restore_threshold2()


def _restore_threshold2() -> None:
    first, second, third = gc.get_threshold()
    if third == _NEVER:
        gc.set_threshold(first, second, _saved_threshold2)


def _after_fork() -> None:
    # Only the forking thread lives on in the child: pauses and deferrals held by the
    # others never end there.
    global _lock, _pauses, _resume, _defers
    if _pauses and _resume:
        gc.enable()
    if _defers:
        _restore_threshold2()
    _lock, _pauses, _resume, _defers = threading.Lock(), 0, False, 0


os.register_at_fork(after_in_child=_after_fork)

"""Flights of a loop that is late to land them, landed by a thread of their own.

A flight committed on an event loop (`loopcommits.py`) holds its log's mutex and `flock`
until it lands, which its loop does when the sync's end wakes it. A loop that a
synchronous call blocks, that stopped with an append in flight, or whose thread is gone
without closing it, lands nothing: other threads and processes that need the log waited
for it, for ever if the loop never ran again or itself waited for one of them (a
`subprocess.run` of the CLI on that session). On the commit thread's path a flight
landed as soon as its sync ended.

One thread per process watches the loops with flights in flight, every `LATE_S` (and
sleeps while there are none). A flight older than that has its sync submitted if its loop
has not, and once the sync has ended (the kernel's own outcome, as the loop would take
it) it is landed there: committed, or cut back out if the sync failed, and its log
released (the flight's mutex is not its loop thread's: see `mutex.py`). Its answer waits
for the loop, which gives it before any later one of that loop.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Protocol

__all__ = ["LATE_S", "poke"]

LATE_S = 0.05
"""A flight not landed this long after it was written has its lock released once synced."""
_IDLE_S = 1.0
"""How long the watch goes on waking with nothing in flight before it sleeps until poked."""


class Watched(Protocol):
    """What the watch asks of a loop's commits (`LoopCommits`)."""

    @property
    def in_flight(self) -> bool:
        """True while a flight is in flight."""
        ...

    def release_late(self, written_before: float) -> None:
        """Land the flights written before that `time.monotonic()` whose syncs ended."""
        ...


class _Watch:
    def __init__(self) -> None:
        self.busy: set[Watched] = set()
        """Loops' commits with flights in flight (held: landed even if nothing else holds
        the loop's commits any more)."""
        self.wake = threading.Event()
        self.awake = False
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        idle_since: float | None = None
        while True:
            busy = []
            for engine in list(self.busy):
                if engine.in_flight:
                    busy.append(engine)
                else:
                    self.busy.discard(engine)
                    if engine.in_flight:  # a flight written meanwhile
                        self.busy.add(engine)
            now = time.monotonic()
            if busy:
                idle_since = None
                for engine in busy:
                    engine.release_late(now - LATE_S)
            elif idle_since is None:
                idle_since = now
            elif now - idle_since > _IDLE_S:
                # Asleep until a flight is written (`poke`); look once more after saying
                # so, for a flight written while this decided.
                self.awake = False
                self.wake.clear()
                if not self.busy:
                    self.wake.wait()
                self.awake = True
                idle_since = None
                continue
            time.sleep(LATE_S)

    def start(self) -> None:
        with self.lock:
            if self.thread is None:
                self.awake = True
                self.thread = threading.Thread(
                    target=self.run, name="agentstore-loop-watch", daemon=True
                )
                self.thread.start()


_watch = _Watch()


def poke(engine: Watched) -> None:
    """A flight of `engine` was written (call after noting it): watch it."""
    watching = _watch
    watching.busy.add(engine)
    if watching.thread is None:
        watching.start()
    elif not watching.awake:
        watching.wake.set()


def _after_fork() -> None:
    # The child has no watch thread, and its loops are its own.
    global _watch
    _watch = _Watch()


os.register_at_fork(after_in_child=_after_fork)

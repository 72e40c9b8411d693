"""The locks of a loop's flights, released when the loop is late to land them.

A flight committed on an event loop (`loopcommits.py`) holds its log's `flock` until that
loop lands it. A loop that a synchronous call blocks (or that stopped with an append in
flight) lands nothing meanwhile: other processes that need the log wait for it, and a
process the loop itself waits for (a `subprocess.run` of the CLI on that session) never
gets it. On the commit thread's path the lock went as soon as the sync ended.

One thread per process watches the loops' flights, every `LATE_S` while any is in flight
and not at all otherwise. A flight older than that has its sync submitted if the loop has
not done it yet, and the syncs that have ended are taken (the kernel's own outcome, as
the loop would take it); each that succeeded has its lock released at once: its lines are
durable and whole, so another process reads them as it would any other and appends after
them. The loop still lands them (commits its view of the log, answers the appends) when
it runs again. A failed sync keeps its lock until the loop has cut its lines back out.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Protocol

__all__ = ["LATE_S", "poke", "watch"]

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
        """Sync and unlock the flights written before that `time.monotonic()`."""
        ...


class _Watch:
    def __init__(self) -> None:
        self.engines: weakref.WeakSet[Watched] = weakref.WeakSet()
        self.wake = threading.Event()
        self.awake = False
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        idle_since: float | None = None
        while True:
            busy = [engine for engine in list(self.engines) if engine.in_flight]
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
                if not any(engine.in_flight for engine in list(self.engines)):
                    self.wake.wait()
                self.awake = True
                idle_since = None
                continue
            time.sleep(LATE_S)


_watch = _Watch()


def watch(engine: Watched) -> None:
    """Watch the flights of `engine` (for as long as it lives)."""
    watching = _watch
    with watching.lock:
        watching.engines.add(engine)
        if watching.thread is None:
            watching.awake = True
            watching.thread = threading.Thread(
                target=watching.run, name="agentstore-loop-watch", daemon=True
            )
            watching.thread.start()


def poke() -> None:
    """A flight was written: wake the watch if it sleeps (call after noting the flight)."""
    if not _watch.awake:
        _watch.wake.set()


def _after_fork() -> None:
    # The child has no watch thread, and its loops are its own.
    global _watch
    _watch = _Watch()


os.register_at_fork(after_in_child=_after_fork)

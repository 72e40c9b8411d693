"""Time-bounded turns: long work on the event loop lets other tasks run every half millisecond.

Decoding or building thousands of events takes tens of milliseconds of CPU. Done on the
event loop in one go it stalls every other task (an agent's other sessions, a server's
other clients); done on a worker thread it is no better, since the worker holds the GIL
for the interpreter's switch interval (5 ms) each time the loop asks for it. So such work
runs on the loop in short pieces, and between pieces it asks `Turns.due()` and, once the
work has held the loop for `TURN` (half a millisecond), gives the loop a turn.
"""

from __future__ import annotations

from time import perf_counter, sleep

import anyio.lowlevel

__all__ = ["TURN", "ThreadTurns", "Turns"]

TURN = 0.0005
"""Seconds of work between two turns of the loop.

A task that sleeps (a timer) runs two or three turns after its time comes: the expired
timer only schedules the task, which then queues behind the work's next slice. So other
tasks wait up to about three of these, plus any collection the work triggers: well under
the 5 ms stall the bench allows. A turn costs about 20 µs on asyncio."""


class Turns:
    """Tracks how long a piece of work has held the event loop since its last turn."""

    __slots__ = ("_began", "_budget")

    def __init__(self, budget: float = TURN) -> None:
        self._budget = budget
        self._began = perf_counter()

    def due(self) -> bool:
        """Whether the work has held the loop for its budget since the last turn."""
        return perf_counter() - self._began > self._budget

    async def take(self) -> None:
        """Give the loop a turn (other tasks run) and start a new budget."""
        await anyio.lowlevel.checkpoint()
        self._began = perf_counter()


THREAD_TURN = 0.0005
"""Seconds a worker thread runs Python code before it hands the GIL over (`ThreadTurns`)."""

_HANDOVER = 0.00005
"""How long a worker sleeps to hand the GIL over: the loop, woken by the release, takes it
within a few microseconds; the kernel's timer slack makes the sleep about 0.1 ms."""


class ThreadTurns:
    """The same for work that must stay on a worker thread (it reads files as it goes).

    Python code on a worker holds the GIL, and the event loop thread, when it wants it
    back (a timer is due, a socket is ready), waits up to the switch interval (5 ms): a
    GIL released for a system call goes back to the worker first, almost always. So a
    long worker loop calls `maybe` every few items; once it has run `THREAD_TURN`, it
    sleeps briefly, which lets a waiting loop take the GIL. It costs a tenth of the
    work's wall time and no CPU.
    """

    __slots__ = ("_began", "_count")

    def __init__(self) -> None:
        self._began = perf_counter()
        self._count = 0

    def maybe(self) -> None:
        """Call once per item: every 8 items, look at the clock; hand over if due."""
        self._count += 1
        if self._count & 7:
            return
        now = perf_counter()
        if now - self._began > THREAD_TURN:
            sleep(_HANDOVER)
            self._began = perf_counter()

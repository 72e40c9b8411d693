"""Time-bounded turns: long work on the event loop lets other tasks run every millisecond.

Decoding or building thousands of events takes tens of milliseconds of CPU. Done on the
event loop in one go it stalls every other task (an agent's other sessions, a server's
other clients); done on a worker thread it is no better, since the worker holds the GIL
for the interpreter's switch interval (5 ms) each time the loop asks for it. So such work
runs on the loop in short pieces, and between pieces it asks `Turns.due()` and, once the
work has held the loop for `TURN` (a millisecond), gives the loop a turn.
"""

from __future__ import annotations

from time import perf_counter, sleep

import anyio.lowlevel

__all__ = ["TURN", "ThreadTurns", "Turns"]

TURN = 0.001
"""Seconds of work between two turns of the loop.

A turn is three passes of the loop (see `Turns.take`), so a task whose timer expired
during a slice runs before the next one: other tasks wait about a slice plus any collection the
work triggers, well under the 5 ms stall the bench allows. A turn costs some 40 µs on
asyncio: at half a millisecond a replay of 10,000 events from a file was 12% slower than
decoding it on a worker thread, at a millisecond 5%."""


class Turns:
    """Tracks how long a piece of work has held the event loop since its last turn."""

    __slots__ = ("_began", "_budget", "taken")

    def __init__(self, budget: float = TURN) -> None:
        self._budget = budget
        self._began = perf_counter()
        self.taken = 0
        """How many turns the work has given the loop."""

    def due(self) -> bool:
        """Whether the work has held the loop for its budget since the last turn."""
        return perf_counter() - self._began > self._budget

    async def take(self) -> None:
        """Give the loop a turn (other tasks run) and start a new budget."""
        # Three passes of the loop. A task asleep on a timer that expired during the slice
        # is woken by the timer's callback in the first pass, which only schedules its
        # step: that step is queued behind ours, so it runs in the second pass after we
        # have yielded again, and our third resumption comes after it. With two passes we
        # resumed ahead of it in the second and it waited a whole slice more (the bench's
        # heartbeat: gaps of two slices and more where one was meant).
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        self._began = perf_counter()
        self.taken += 1

    async def last(self) -> None:
        """End work that took turns with one more, before its caller gets the result.

        What a caller does next with thousands of events (even dropping them: about 3 ms
        for 10,000 here) then starts a slice of its own instead of extending the work's.
        """
        if self.taken:
            await self.take()


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
        self.check()

    def check(self) -> None:
        """Look at the clock now (for items that take long each); hand over if due."""
        if perf_counter() - self._began > THREAD_TURN:
            sleep(_HANDOVER)
            self._began = perf_counter()

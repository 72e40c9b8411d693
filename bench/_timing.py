"""Timing helpers shared by the agentstore runner and the peers' worker.

This module imports nothing from agentstore: the peers' worker runs it in its own venv.
A measurement is a plain dict (JSON-ready), so results cross the process boundary as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

__all__ = [
    "Heartbeat",
    "harness_collect",
    "harness_drop",
    "measure",
    "measure_async",
    "result",
]


def result(
    system: str,
    *,
    latencies_ns: list[int],
    wall_ns: int,
    units_per_op: int = 1,
    unit: str = "op",
    note: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """Summarise one run: throughput over the whole wall time, and per-op latency."""
    ops = len(latencies_ns)
    ordered = sorted(latencies_ns)
    p99 = ordered[min(ops - 1, int(ops * 0.99))] if ops else 0
    return {
        "system": system,
        "ops": ops,
        "units_per_op": units_per_op,
        "unit": unit,
        "wall_s": wall_ns / 1e9,
        "ops_per_s": ops / (wall_ns / 1e9) if wall_ns else 0.0,
        "units_per_s": ops * units_per_op / (wall_ns / 1e9) if wall_ns else 0.0,
        "median_us": statistics.median(ordered) / 1000 if ops else 0.0,
        "p99_us": p99 / 1000,
        "max_us": ordered[-1] / 1000 if ops else 0.0,
        "note": note,
        **extra,
    }


_ACTIVE: list[Heartbeat] = []
"""The heartbeats running now (the harness's collections are kept out of them)."""


def harness_collect() -> None:
    """`gc.collect()` by the benchmark itself, kept out of every running heartbeat.

    The harness collects before each timed region so that every run starts from the same
    heap. That full collection is the harness's act, not the measured code's: counted, it
    made the longest "stall" of some rows (a full collection of the store the row had just
    built), which says nothing about a call to the store. Its wall and CPU time are taken
    off the heartbeat gap it falls in, and its pause off the collector's longest pause.
    """
    with _excused():
        gc.collect()


def harness_drop(held: list[Any]) -> int:
    """Free what timed calls returned (`held` is emptied); return the nanoseconds it took.

    Dropping a result is the harness's act too, as it would be the caller's in a program:
    freeing a 10,000-event replay takes 3-7 ms on the 2-core machine, in any Python code
    that drops that many objects at once (more than the same lines as plain dicts). It is
    kept out of every heartbeat's gaps and timed on its own (`Heartbeat.longest_drop_ms`);
    the caller adds the returned time to the call's latency, as before, and leaves this
    function's own bookkeeping out of it.
    """
    with _excused():
        t0 = time.perf_counter_ns()
        held.clear()
        freed = time.perf_counter_ns() - t0
    for beat in _ACTIVE:
        beat.longest_drop_ms = max(beat.longest_drop_ms, freed / 1e6)
    return freed


@contextlib.contextmanager
def _excused() -> Iterator[None]:
    """Run the harness's own work: its wall and CPU time are taken off the heartbeat gap
    it falls in, and a collection in it off the collector's longest pause."""
    t0, c0 = time.perf_counter(), time.thread_time()
    for beat in _ACTIVE:
        beat._harness_collecting = True
    try:
        yield
    finally:
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        for beat in _ACTIVE:
            beat._harness_collecting = False
            beat._excused_wall += wall
            beat._excused_cpu += cpu


def measure(
    system: str, op: Callable[[int], Any], n: int, *, warmup: int = 0, **kw: Any
) -> dict[str, Any]:
    """Time `op(i)` for i in range(n), one call at a time."""
    for i in range(warmup):
        op(-1 - i)
    lat: list[int] = []
    append = lat.append
    clock = time.perf_counter_ns
    harness_collect()
    start = clock()
    for i in range(n):
        t0 = clock()
        op(i)
        append(clock() - t0)
    wall = clock() - start
    return result(system, latencies_ns=lat, wall_ns=wall, **kw)


async def between_calls() -> None:
    """Give the loop a turn between two timed calls, as an agent does between steps.

    Two passes of the loop: a task whose timer expired (the heartbeat) is only scheduled in
    the first and runs in the second. With one, back-to-back calls of 1 ms read as 3 ms
    "stalls", the heartbeat running every second or third.
    """
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def measure_async(
    system: str,
    op: Callable[[int], Awaitable[Any]],
    n: int,
    *,
    warmup: int = 0,
    yield_every: int = 1,
    **kw: Any,
) -> dict[str, Any]:
    """Time `await op(i)` for i in range(n), sequentially.

    After every `yield_every` ops the loop is given a turn (outside the timed region), as
    a real agent does I/O between steps: otherwise a backend whose calls never suspend
    would hide the heartbeat for the whole run, which says nothing about any single call.
    """
    for i in range(warmup):
        await op(-1 - i)
        await asyncio.sleep(0)
    lat: list[int] = []
    append = lat.append
    clock = time.perf_counter_ns
    harness_collect()
    paused = 0
    start = clock()
    held: list[Any] = []
    for i in range(n):
        t0 = clock()
        held.append(await op(i))
        t1 = clock()
        # The result is freed in the latency, as before, but not in the call's stall;
        # the harness's own bookkeeping around it is in neither (nor in the wall time).
        freed = harness_drop(held)
        t2 = clock()
        append(t1 - t0 + freed)
        paused += t2 - t1 - freed
        if yield_every and i % yield_every == yield_every - 1:
            await between_calls()
            paused += clock() - t2
    wall = clock() - start - paused
    return result(system, latencies_ns=lat, wall_ns=wall, **kw)


class Heartbeat:
    """A 1 ms heartbeat task; `longest_gap_ms` is how late its longest tick was.

    A tick sleeps 1 ms; the gap is the time between ticks. A gap much longer than 1 ms
    means something held the event loop (or, on a shared machine, the CPU) that long.
    """

    def __init__(self) -> None:
        self.longest_gap_ms = 0.0
        self.longest_busy_ms = 0.0
        """The most CPU time the loop's own thread spent between two ticks: code that
        held the loop, as opposed to the machine or another thread taking the CPU."""
        self.longest_gc_ms = 0.0
        """The longest pause of Python's garbage collector (any thread)."""
        self.longest_drop_ms = 0.0
        """The longest `harness_drop` (freeing what a call returned), kept out of the gaps."""
        self.gap_waiting_ms: float | None = None
        """Of the longest gap, how long the loop's thread was ready to run while the OS ran
        other threads or processes (its run-queue wait, from /proc; None where Linux does
        not tell): the machine's share of that gap, not the code's."""
        self.longest_own_gap_ms: float | None = None
        """The longest gap less the run-queue wait within it (None where Linux does not
        tell): what the process itself held the loop for (its code, its collections, the
        GIL held by its other threads: a thread the OS kept waiting while it held the GIL
        counts here too, so a busy machine still inflates it)."""
        self._gc_started = 0.0
        self._harness_collecting = False
        self._excused_wall = 0.0
        self._excused_cpu = 0.0
        """Time the harness spent in `harness_collect` since the last tick."""
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        clock, cpu = time.perf_counter, time.thread_time
        run_queue = _RunQueueWait()  # opened here: on the loop's thread
        try:
            last, last_cpu, last_wait = clock(), cpu(), run_queue()
            while True:
                await asyncio.sleep(0.001)
                now, now_cpu, now_wait = clock(), cpu(), run_queue()
                gap = (now - last - self._excused_wall) * 1000
                busy = (now_cpu - last_cpu - self._excused_cpu) * 1000
                self._excused_wall = self._excused_cpu = 0.0
                waited = (
                    (now_wait - last_wait) * 1000
                    if now_wait is not None and last_wait is not None
                    else None
                )
                if gap > self.longest_gap_ms:
                    self.longest_gap_ms = gap
                    self.gap_waiting_ms = waited
                if waited is not None and gap - waited > (self.longest_own_gap_ms or 0.0):
                    self.longest_own_gap_ms = gap - waited
                if busy > self.longest_busy_ms:
                    self.longest_busy_ms = busy
                last, last_cpu, last_wait = now, now_cpu, now_wait
        finally:
            run_queue.close()

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        # The collector's pauses, to tell them apart from code holding the loop.
        if self._harness_collecting:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            pause = (time.perf_counter() - self._gc_started) * 1000
            self.longest_gc_ms = max(self.longest_gc_ms, pause)

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0.002)
        self.longest_gap_ms = self.longest_busy_ms = self.longest_gc_ms = 0.0
        self.longest_drop_ms = 0.0
        self.gap_waiting_ms = self.longest_own_gap_ms = None
        self._gc_started = self._excused_wall = self._excused_cpu = 0.0
        gc.callbacks.append(self._gc)
        _ACTIVE.append(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        gc.callbacks.remove(self._gc)
        _ACTIVE.remove(self)
        await asyncio.sleep(0.002)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class _RunQueueWait:
    """Seconds the calling thread has spent ready to run but not running (Linux: the second
    field of /proc/thread-self/schedstat); None elsewhere. Read with one `pread`."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def __call__(self) -> float | None:
        if self._fd is None:
            return None
        return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

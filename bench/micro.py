"""Design measurements: which per-session lock, and how an append reaches a worker thread.

- asyncio.Lock vs anyio.Lock(fast_acquire=True) vs anyio.Lock(): uncontended
  acquire+release, and 16 tasks contending for one lock.
- aiofiles (a thread hop per call: write, flush, then fdatasync through the executor) vs
  one `anyio.to_thread.run_sync` hop that writes and syncs; and the bare hop cost of each.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import aiofiles
import anyio
import anyio.to_thread

from bench._hop import ThreadPool
from bench._timing import result

__all__ = ["hops", "locks"]


async def _uncontended(lock: Any, n: int) -> int:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(n):
        async with lock:
            pass
    return clock() - start


async def _contended(lock: Any, tasks: int, per_task: int) -> int:
    async def worker() -> None:
        for _ in range(per_task):
            async with lock:
                await asyncio.sleep(0)  # hold it across a suspension, as an append does

    clock = time.perf_counter_ns
    start = clock()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return clock() - start


async def locks(n: int = 200_000, tasks: int = 16, per_task: int = 2000) -> list[dict[str, Any]]:
    """Cost per acquire+release of each lock kind, uncontended and with 16 contenders."""
    out = []
    kinds = {
        "asyncio.Lock()": asyncio.Lock,
        "anyio.Lock(fast_acquire=True)": lambda: anyio.Lock(fast_acquire=True),
        "anyio.Lock()": anyio.Lock,
    }
    for name, make in kinds.items():
        best_u = min([await _uncontended(make(), n) for _ in range(3)])
        best_c = min([await _contended(make(), tasks, per_task) for _ in range(3)])
        out.append(
            {
                "system": name,
                "uncontended_ns": best_u / n,
                "contended_us": best_c / (tasks * per_task) / 1000,
            }
        )
    return out


async def hops(base: Path, line: bytes, n: int = 1000) -> list[dict[str, Any]]:
    """A durable append of `line` the aiofiles way (3 hops) vs one to_thread hop."""
    out = []
    path = base / "hop.log"
    clock = time.perf_counter_ns
    loop = asyncio.get_running_loop()

    async with aiofiles.open(path, "ab") as handle:
        fd = handle.fileno()
        lat = []
        start = clock()
        for _ in range(n):
            t0 = clock()
            await handle.write(line)
            await handle.flush()
            await loop.run_in_executor(None, os.fdatasync, fd)
            lat.append(clock() - t0)
        out.append(
            result(
                "aiofiles write + flush + fdatasync (3 hops)",
                latencies_ns=lat,
                wall_ns=clock() - start,
            )
        )

    fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def write_sync() -> None:
        os.write(fd, line)
        os.fdatasync(fd)

    pool = ThreadPool()
    try:
        for name, run in (
            (
                "anyio.to_thread.run_sync(write + fdatasync) (1 hop)",
                lambda: anyio.to_thread.run_sync(write_sync),
            ),
            (
                "SimpleQueue pool + call_soon_threadsafe (write + fdatasync) (1 hop)",
                lambda: pool.run(write_sync),
            ),
        ):
            lat = []
            start = clock()
            for _ in range(n):
                t0 = clock()
                await run()
                lat.append(clock() - t0)
            out.append(result(name, latencies_ns=lat, wall_ns=clock() - start))
    finally:
        os.close(fd)
        path.unlink()

    def noop() -> None:
        return None

    for name, hop in (
        ("bare hop: anyio.to_thread.run_sync(noop)", lambda: anyio.to_thread.run_sync(noop)),
        ("bare hop: loop.run_in_executor(None, noop)", lambda: loop.run_in_executor(None, noop)),
        ("bare hop: SimpleQueue pool + call_soon_threadsafe (noop)", lambda: pool.run(noop)),
    ):
        lat = []
        start = clock()
        for _ in range(n * 5):
            t0 = clock()
            await hop()
            lat.append(clock() - t0)
        out.append(result(name, latencies_ns=lat, wall_ns=clock() - start))
    pool.close()
    return out


async def append_breakdown(base: Path, n: int = 800) -> dict[str, float]:
    """Where one durable append's time goes: median µs per stage (instrumented run).

    A lone append to an open, idle log is committed on the loop's own thread
    (`agentstore.backends.file.loopcommits`): planned and written at once, its
    `fdatasync` handed to the kernel by AIO, and landed when the loop sees the sync end.
    The stages are timed by wrapping `LoopCommits.take`, `_submit` and `_on_synced`
    (bench-only instrumentation, removed afterwards) and the caller's own `await`.
    """
    import statistics

    import agentstore
    from agentstore import EventType, new_event
    from agentstore.backends.file import loopcommits

    marks: list[dict[str, int]] = []
    clock = time.perf_counter_ns
    cls = loopcommits.LoopCommits
    orig = {name: getattr(cls, name) for name in ("take", "_submit", "_on_synced")}

    def timed(name: str) -> Any:
        def wrapper(self: Any, *args: Any) -> Any:
            if marks:
                marks[-1].setdefault(f"{name} start", clock())
            try:
                return orig[name](self, *args)
            finally:
                if marks:
                    marks[-1].setdefault(f"{name} end", clock())

        return wrapper

    for name in orig:
        setattr(cls, name, timed(name))
    try:
        root = base / "breakdown"
        async with agentstore.open(root) as store:
            sid = (await store.create_session()).id
            payload = {"tool": "search_flights", "query": "BER -> MUC", "step": 1}
            for _ in range(20):
                await store.append(sid, new_event(EventType.TOOL_CALLED, payload))
            start = clock()
            for _ in range(n):
                marks.append({"call": clock()})
                await store.append(sid, new_event(EventType.TOOL_CALLED, payload))
                marks[-1]["resume"] = clock()
            wall = clock() - start
    finally:
        for name, method in orig.items():
            setattr(cls, name, method)
        import shutil

        shutil.rmtree(base / "breakdown", ignore_errors=True)
    stages = ("call", "take start", "_submit start", "_submit end", "_on_synced start")
    stages += ("_on_synced end", "resume")
    done = [m for m in marks if set(stages) <= m.keys()]

    def med(first: str, then: str) -> float:
        values = [m[then] - m[first] for m in done]
        return statistics.median(values) / 1000 if values else float("nan")

    return {
        "per append (wall / n)": wall / n / 1000,
        "on the loop before the backend (new_event, validate, the session's lock)": med(
            "call", "take start"
        ),
        "on the loop: the log's locks, plan, encode, write": med("take start", "_submit start"),
        "on the loop: io_submit of the fdatasync (AIO)": med("_submit start", "_submit end"),
        "the kernel's fdatasync until the loop sees it end (eventfd)": med(
            "_submit end", "_on_synced start"
        ),
        "on the loop: land the flight and answer": med("_on_synced start", "_on_synced end"),
        "on the loop: back to the caller (fold, snapshot, result)": med("_on_synced end", "resume"),
    }

"""One A/B probe, run in a fresh process against whichever `agentstore` is first on the path.

`python bench/ab_probe.py NAME [ARG]` prints one number (smaller is better) as JSON. It
uses only the public API, so the same probe runs against the tree before a change and after
it (see `bench.ab`). Run as a script, not with -m: the tree under test must come first on
`sys.path` (PYTHONPATH), ahead of the working directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import agentstore
from agentstore import EventType, new_event

Probe = Callable[[], Awaitable[float]]


def _payload(i: int) -> dict[str, Any]:
    return {"tool": "search_flights", "args": {"from": "AMS", "to": "LIS", "n": i}}


async def _per_append_us(store: agentstore.Store, sid: str, n: int) -> float:
    clock = time.perf_counter
    best = float("inf")
    for _ in range(5):
        start = clock()
        for i in range(n):
            await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))
        best = min(best, (clock() - start) / n * 1e6)
        await asyncio.sleep(0)
    return best


async def memory_append() -> float:
    """µs per new_event + append, in memory, nothing cached (no get_state yet)."""
    async with agentstore.open(in_memory=True, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        await _per_append_us(store, sid, 2000)
        return await _per_append_us(store, sid, 20000)


async def memory_append_folded() -> float:
    """µs per new_event + append, in memory, the state cached (every append folds)."""
    async with agentstore.open(in_memory=True, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)
        await _per_append_us(store, sid, 2000)
        return await _per_append_us(store, sid, 20000)


async def memory_append_snapshots() -> float:
    """µs per new_event + append, in memory, state cached, a snapshot every 100 events."""
    async with agentstore.open(in_memory=True, snapshot_interval=100) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)
        await _per_append_us(store, sid, 2000)
        return await _per_append_us(store, sid, 20000)


async def _cold_ms(store_factory: Callable[[], Any], sid: str, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        async with store_factory() as cold:
            start = time.perf_counter()
            await cold.get_state(sid)
            best = min(best, time.perf_counter() - start)
    return best * 1e3


async def memory_cold_state() -> float:
    """ms for get_state of 1,000 events, memory, no cache, no snapshot."""
    async with agentstore.open(in_memory=True, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        for i in range(1000):
            await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))
        backend = store._backend  # the probe needs a second store on the same memory

        def factory() -> Any:
            return agentstore.Store(backend, cache_size=0, snapshot_interval=0)

        best = float("inf")
        cold = factory()
        await cold
        for _ in range(40):
            start = time.perf_counter()
            await cold.get_state(sid)
            best = min(best, time.perf_counter() - start)
        return best * 1e3


async def file_cold_state() -> float:
    """ms for get_state of 1,000 events from a reopened file store, no snapshot."""
    with tempfile.TemporaryDirectory() as tmp:
        async with agentstore.open(tmp, snapshot_interval=0, durability="flush") as store:
            sid = (await store.create_session()).id
            await store.append_many(
                sid, [new_event(EventType.TOOL_CALLED, _payload(i)) for i in range(1000)]
            )
        return await _cold_ms(lambda: agentstore.open(tmp, snapshot_interval=0), sid, 20)


async def file_concurrent_snapshots() -> float:
    """µs per durable append (fsync), 8 tasks on one session, a snapshot every 20 events."""
    with tempfile.TemporaryDirectory() as tmp:
        async with agentstore.open(tmp, snapshot_interval=20) as store:
            sid = (await store.create_session()).id
            await store.get_state(sid)

            async def task(k: int) -> None:
                for i in range(60):
                    await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

            start = time.perf_counter()
            await asyncio.gather(*(task(k) for k in range(8)))
            return (time.perf_counter() - start) / (8 * 60) * 1e6


async def _durable_us(tasks: int, sessions: int, per_task: int) -> float:
    """µs per durable append (fsync) over the whole run: `tasks` tasks on `sessions` sessions."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("AGENTSTORE_AB_DISK")) as tmp:
        async with agentstore.open(tmp, snapshot_interval=0) as store:
            sids = [(await store.create_session()).id for _ in range(sessions)]
            for sid in sids:
                await store.get_state(sid)

            async def task(k: int, n: int) -> None:
                sid = sids[k % sessions]
                for i in range(n):
                    await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

            await asyncio.gather(*(task(k, 20) for k in range(tasks)))  # warm up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                await asyncio.gather(*(task(k, per_task) for k in range(tasks)))
                best = min(best, (time.perf_counter() - start) / (tasks * per_task) * 1e6)
            return best


async def file_durable_one() -> float:
    """µs per durable append (fsync), one task on one session, each awaited in turn."""
    return await _durable_us(1, 1, 1000)


async def file_durable_16_sessions() -> float:
    """µs per durable append (fsync) over the run, 16 tasks each on its own session."""
    return await _durable_us(16, 16, 150)


async def file_durable_16_one_session() -> float:
    """µs per durable append (fsync) over the run, 16 tasks on ONE session."""
    return await _durable_us(16, 1, 150)


async def _list_ms(store: agentstore.Store, reps: int) -> float:
    """Best ms for the first page of 100 sessions, newest first."""
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        await store.list_sessions(limit=100)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


async def memory_list_sessions() -> float:
    """ms for list_sessions(limit=100) over 10,000 sessions, in memory."""
    async with agentstore.open(in_memory=True) as store:
        for _ in range(10_000):
            await store.create_session(labels={"env": "bench"})
        return await _list_ms(store, 30)


async def file_list_sessions() -> float:
    """ms for list_sessions(limit=100) over 2,000 sessions in a data directory."""
    with tempfile.TemporaryDirectory() as tmp:
        async with agentstore.open(tmp, durability="flush") as store:
            for _ in range(2_000):  # each creation syncs its directory: 10,000 took a minute
                await store.create_session(labels={"env": "bench"})
        async with agentstore.open(tmp) as store:
            return await _list_ms(store, 10)


def _timeline(first_rows: int | None) -> float:
    """Seconds until `agentstore replay` of the 100,000-event session wrote `first_rows`
    rows to a pipe (None: all of it, and the command ended)."""
    data = os.environ["AGENTSTORE_AB_TIMELINE_DATA"]
    code = "import sys; from agentstore_cli.app import main; sys.argv[0] = 'agentstore'; main()"
    cmd = [sys.executable, "-c", code, "--data-dir", data, "replay", "long-run"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, "COLUMNS": "100"})
    assert proc.stdout is not None
    lines = 0
    while chunk := proc.stdout.read1(1 << 16):
        lines += chunk.count(b"\n")
        if first_rows is not None and lines > first_rows:  # the header line, then rows
            elapsed = time.perf_counter() - start
            proc.kill()
            proc.wait()
            proc.stdout.close()
            return elapsed
    proc.wait()
    proc.stdout.close()
    if proc.returncode != 0 or lines < 100_000:
        raise RuntimeError(f"replay failed ({proc.returncode}) after {lines} lines")
    return time.perf_counter() - start


async def timeline_total() -> float:
    """s for the whole timeline of 100,000 events to a pipe (`agentstore replay`)."""
    return _timeline(None)


async def timeline_first_screen() -> float:
    """s until the first 50 timeline rows of 100,000 events reached the pipe."""
    return _timeline(50)


PROBES: dict[str, Probe] = {
    "timeline_total": timeline_total,
    "timeline_first_screen": timeline_first_screen,
    "memory_append": memory_append,
    "memory_append_folded": memory_append_folded,
    "memory_append_snapshots": memory_append_snapshots,
    "memory_cold_state": memory_cold_state,
    "file_cold_state": file_cold_state,
    "file_concurrent_snapshots": file_concurrent_snapshots,
    "file_durable_one": file_durable_one,
    "file_durable_16_sessions": file_durable_16_sessions,
    "file_durable_16_one_session": file_durable_16_one_session,
    "memory_list_sessions": memory_list_sessions,
    "file_list_sessions": file_list_sessions,
}

if __name__ == "__main__":
    print(json.dumps(asyncio.run(PROBES[sys.argv[1]]())))

"""One A/B probe, run in a fresh process against whichever `agentstore` is first on the path.

`python bench/ab_probe.py NAME [ARG]` prints one number (smaller is better) as JSON. It
uses only the public API, so the same probe runs against the tree before a change and after
it (see `bench.ab`). Run as a script, not with -m: the tree under test must come first on
`sys.path` (PYTHONPATH), ahead of the working directory.
"""

from __future__ import annotations

import asyncio
import json
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


async def file_append_snapshots() -> float:
    """p99 µs of a durable file append (fsync) with a snapshot every 20 events."""
    with tempfile.TemporaryDirectory() as tmp:
        async with agentstore.open(tmp, snapshot_interval=20) as store:
            sid = (await store.create_session()).id
            await store.get_state(sid)
            lat = []
            for i in range(600):
                start = time.perf_counter()
                await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))
                lat.append(time.perf_counter() - start)
            lat.sort()
            return lat[int(len(lat) * 0.99)] * 1e6


PROBES: dict[str, Probe] = {
    "memory_append": memory_append,
    "memory_append_folded": memory_append_folded,
    "memory_append_snapshots": memory_append_snapshots,
    "memory_cold_state": memory_cold_state,
    "file_cold_state": file_cold_state,
    "file_append_snapshots": file_append_snapshots,
}

if __name__ == "__main__":
    print(json.dumps(asyncio.run(PROBES[sys.argv[1]]())))

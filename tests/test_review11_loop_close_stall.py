"""Review 11 (loop commits): closing a store, or moving to a new loop, does not stall.

A loop that committed appends owns a kernel AIO context; freeing one (`io_destroy`) waits
for an RCU grace period, 32 ms on this project's machines, and it ran on the event loop's
thread: every `store.close()` stalled the loop that long (0.5 ms on the commit thread's
path), and a sync wrapper that ran `asyncio.run(store.append(...))` per append paid it on
every call (35 ms an append instead of 1). An idle context is now kept for the next loop,
and one still busy is freed on a thread of its own.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend


async def test_closing_a_store_that_committed_on_its_loop_is_quick(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s")
    took = []
    for i in range(7):
        store = await agentstore.open(tmp_path)
        await store.append("s", new_event("custom", {"i": i}))
        backend = store.backend
        assert isinstance(backend, FileBackend)
        if backend._commits._here is None:
            await store.close()
            pytest.skip("no Linux AIO with eventfd here")
        began = time.perf_counter()
        await store.close()
        took.append(time.perf_counter() - began)
    assert statistics.median(took) < 0.015, took
    async with agentstore.open(tmp_path) as store:
        assert [e.payload["i"] for e in await store.get_events("s")] == list(range(7))


def test_one_loop_per_append_is_quick(tmp_path: Path) -> None:
    async def opened() -> agentstore.Store:
        store = await agentstore.open(tmp_path)
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        return store

    store = asyncio.run(opened())
    took = []
    for i in range(1, 8):  # a sync wrapper: a new event loop for every call
        began = time.perf_counter()
        asyncio.run(store.append("s", new_event("custom", {"i": i})))
        took.append(time.perf_counter() - began)

    async def close_and_reread() -> list[int]:
        await store.close()
        async with agentstore.open(tmp_path) as again:
            return [e.payload["i"] for e in await again.get_events("s")]

    assert asyncio.run(close_and_reread()) == list(range(8))
    assert statistics.median(took) < 0.015, took

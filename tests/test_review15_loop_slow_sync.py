"""Review 15 (loop commits, c1ab011): a slow sync of one log holds no other log's appends.

Since c1ab011 a flight written on the loop while syncs are in flight waits for one of
them to end, then goes with every flight held meanwhile. A sync that takes long (a log
with megabytes to write: 16 MB here, 10-20 ms) held every other log's flights until it
ended (at most the watch thread's backstop, `loopwatch.LATE_S`, 50 ms): here a median
of 11 ms from write to submit; and beside a session writing 8 MB payloads, a small
session's append took 50-67 ms (median) instead of 6.6-7.0 (its sync then also waited
for the big log's next write, in the file system's journal). Now a held flight goes once
`loopcommits.HOLD_S` (2 ms, a timer) has passed with no sync ended: 2.2 ms, and 7.5-8.4
ms. Skipped where the disk syncs 16 MB in under 10 ms (the hold is then too short to
tell).

The hold is measured where it happens: from the flight's write (the time the loop notes
for the watch thread) to the `io_submit` that takes its sync."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend, aiosync, loopcommits


def _sync_of_16_mb(path: Path) -> float:
    """How long this disk takes to `fdatasync` 16 MB just written (the faster of two)."""
    took = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for _ in range(2):
            os.write(fd, b"y" * (16 << 20))
            began = time.monotonic()
            os.fdatasync(fd)
            took.append(time.monotonic() - began)
    finally:
        os.close(fd)
        path.unlink()
    return min(took)


async def test_a_slow_sync_holds_no_other_logs_flight_for_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holds: list[float] = []  # the small log's flights: from write to submit
    real_submit = aiosync.AioSyncer.submit

    def submit(self: Any, items: Any) -> Any:
        now = time.monotonic()
        for _, flight in items:
            if not isinstance(flight, loopcommits.Flight):
                continue
            engine = here[0]
            written = engine._written.get("small") if engine is not None else None
            if flight.group.view.session_id == "small" and written is not None:
                holds.append(now - written)
        return real_submit(self, items)

    if _sync_of_16_mb(tmp_path / "scratch") < 0.01:
        pytest.skip("this disk syncs 16 MB too fast for a hold to show")
    here: list[Any] = [None]
    monkeypatch.setattr(aiosync.AioSyncer, "submit", submit)
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        for sid in ("big", "small"):
            await store.create_session(session_id=sid)
            await store.append(sid, new_event("custom", {"i": 0}))  # its log open here
        backend = store.backend
        assert isinstance(backend, FileBackend)
        here[0] = backend._commits._here
        if here[0] is None:
            pytest.skip("no Linux AIO with eventfd here")
        blob = "y" * (16 << 20)  # a sync of 10-20 ms here
        stop = asyncio.Event()

        async def big() -> None:
            while not stop.is_set():
                await store.append("big", new_event("custom", {"blob": blob}))

        writer = asyncio.ensure_future(big())
        await asyncio.sleep(0.05)  # a large sync under way
        for i in range(25):
            await store.append("small", new_event("custom", {"i": i}))
            await asyncio.sleep(0.002)
        stop.set()
        await writer
    holds.sort()
    assert len(holds) >= 18, holds
    # Held until the large sync ended: a median of 11 ms (8-18). With `HOLD_S`: 2.2.
    assert holds[len(holds) // 2] < 0.005, [round(h * 1000, 1) for h in holds]

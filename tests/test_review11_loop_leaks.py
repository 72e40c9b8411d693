"""Review 11 (loop commits): stores closed while their appends run leave nothing open.

Counted in /proc/self/fd and /proc/self/maps after every store is closed: the logs'
descriptors, the eventfds the loop's commits watch, and AIO contexts. An append whose log
was not open yet opens it on a worker thread; when the store was closed meanwhile, that
log was put into the closed store's views and its descriptor was never closed (one per
session appended to at the close: a server that opens a store per request ran out of
descriptors).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

import agentstore
from agentstore import StoreClosedError, new_event
from agentstore.backends.file import aiosync

SESSIONS = 6
CYCLES = 30


def _open_under(root: Path) -> list[str]:
    """This process's descriptors that lead into `root`, and its eventfds."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(str(root)) or "eventfd" in target:
            found.append(target)
    return found


def _aio_rings() -> int:
    """The AIO contexts of this process (each maps its ring)."""
    with open("/proc/self/maps") as maps:
        return sum("[aio]" in line for line in maps)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_stores_closed_mid_append_leave_no_descriptor_open(tmp_path: Path) -> None:
    async def make() -> list[str]:
        async with agentstore.open(tmp_path) as store:
            return [(await store.create_session()).id for _ in range(SESSIONS)]

    sids = asyncio.run(make())
    eventfds_before = _open_under(tmp_path).count("anon_inode:[eventfd]")
    rings_before = _aio_rings()
    acked: list[tuple[str, str, int]] = []

    async def cycle(wait: int) -> None:
        store = await agentstore.open(tmp_path)

        async def writer(sid: str) -> None:
            try:
                for i in range(50):
                    event = new_event("custom", {"i": i})
                    stored = await store.append(sid, event)
                    acked.append((sid, event.id, stored.sequence_number))
            except StoreClosedError:
                pass

        tasks = [asyncio.ensure_future(writer(sid)) for sid in sids]
        for _ in range(wait):  # the close lands at another step of the appends each time
            await asyncio.sleep(0)
        await store.close()
        await asyncio.gather(*tasks)

    async def cycles() -> None:
        for n in range(CYCLES):
            await cycle(n % 8)

    asyncio.run(cycles())
    left = _open_under(tmp_path)
    assert [target for target in left if target.startswith(str(tmp_path))] == []
    assert left.count("anon_inode:[eventfd]") <= eventfds_before
    # AIO contexts: the commit threads' reapers free theirs as they end; the loops' idle
    # ones are kept for reuse, a few at most (aiosync._SPARE_MAX).
    for thread in threading.enumerate():
        if thread.name in ("agentstore-aio", "agentstore-aio-free"):
            thread.join(10)
    assert _aio_rings() <= rings_before + aiosync._SPARE_MAX

    async def check() -> None:
        async with agentstore.open(tmp_path) as store:
            seqs = {}
            for sid in sids:
                events = await store.get_events(sid)
                assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
                seqs.update({(sid, e.id): e.sequence_number for e in events})
            assert all(seqs[sid, eid] == seq for sid, eid, seq in acked)

    asyncio.run(check())

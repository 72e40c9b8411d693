"""Two threads reading a read event's metadata for the first time get the same object."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import agentstore
from agentstore import Event, Metadata, new_event


async def _read(root: Path) -> list[Event]:
    async with agentstore.open(root, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        for _ in range(20):
            await store.append_many(sid, [new_event("custom", i) for i in range(1000)])
    async with agentstore.open(root) as store:
        return await store.replay(sid)


async def test_every_thread_gets_the_events_own_metadata(tmp_path: Path) -> None:
    events = await _read(tmp_path)
    got: list[list[Metadata | None]] = [[None] * len(events) for _ in range(2)]
    start = threading.Barrier(2)

    def reader(k: int) -> None:
        start.wait()
        mine = got[k]
        for i, event in enumerate(events):
            mine[i] = event.metadata

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: the window is a few bytecodes
    try:
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    strays = [i for i, e in enumerate(events) if any(g[i] is not e.metadata for g in got)]
    assert strays == []

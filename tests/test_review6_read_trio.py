"""Review: the file read's hops and turns on trio (anyio's other backend), cancelled or not.

The read hops to worker threads and takes turns with `anyio.lowlevel.checkpoint`; on trio
a thread hop cannot be abandoned, and a cancelled read must still close its descriptor.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import reading

N = 2000


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reads_on_trio_across_hops_and_cancelled_mid_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "HOP_BYTES", 16 * 1024)
    monkeypatch.setattr("agentstore.backends.file.lines.READ_CHUNK", 5 * 1024 + 7)

    async def run() -> None:
        async with agentstore.open(tmp_path) as store:
            sid = (await store.create_session()).id
            await store.append_many(
                sid, [new_event("custom", {"i": i, "pad": "t" * (i % 80)}) for i in range(N)]
            )
            await store.get_state(sid)  # the snapshot writes behind the fill are done
            every = await store.replay(sid)
            assert [e.payload["i"] for e in every] == list(range(N))
            got = await store.replay(sid, from_seq=999, to_seq=1500, limit=400)
            assert got == every[998:1398]
            before = _open_descriptors()
            for after in (0, 1, 2, 5, 9, 20, 60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(store.replay, sid)
                    for _ in range(after):
                        await anyio.lowlevel.checkpoint()
                    tg.cancel_scope.cancel()
                assert _open_descriptors() == before, after
            assert await store.replay(sid) == every

    anyio.run(run, backend="trio")

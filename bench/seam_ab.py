"""A/B of the storage seam (issue 10): run with two venvs, interleaved, on one machine.

    for i in 1 2 3; do OLD/.venv/bin/python -m bench.seam_ab before; .venv/bin/python -m bench.seam_ab after; done

`OLD` is a worktree at the commit before the seam (bd6b590) with `make install` run in it.
Each run prints: the in-memory `new_event` + `append` (best of 5 x 10,000, pricing and
snapshots off), and from a reopened read-only data directory of 10,000 events the cold
`get_state(at_seq=1000)` and a full `replay` (best of 5). Only what both versions have is
used, so the same file runs on either.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

import agentstore


async def _memory_append() -> float:
    async with agentstore.open(in_memory=True, snapshot_interval=0, pricing=False) as store:
        session = await store.create_session()
        for _ in range(2000):
            await store.append(session.id, agentstore.new_event("custom", {"a": 1, "b": "x"}))
        best = 1e9
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(10_000):
                await store.append(session.id, agentstore.new_event("custom", {"a": 1, "b": "x"}))
            best = min(best, (time.perf_counter() - start) / 10_000)
        return best


async def _cold_reads() -> tuple[float, float]:
    data = tempfile.mkdtemp()
    async with agentstore.open(data, snapshot_interval=0, pricing=False, durability="flush") as s:
        session = await s.create_session()
        for i in range(0, 10_000, 100):
            await s.append_many(
                session.id,
                [
                    agentstore.new_event("tool_called", {"tool": "search", "q": "x" * 40, "i": j})
                    for j in range(i, i + 100)
                ],
            )
    best_state = best_replay = 1e9
    for _ in range(5):
        async with agentstore.open(data, pricing=False, read_only=True) as s:
            start = time.perf_counter()
            await s.get_state(session.id, at_seq=1000)
            best_state = min(best_state, time.perf_counter() - start)
        async with agentstore.open(data, pricing=False, read_only=True) as s:
            start = time.perf_counter()
            await s.replay(session.id)
            best_replay = min(best_replay, time.perf_counter() - start)
    return best_state, best_replay


async def main(label: str) -> None:
    append = await _memory_append()
    state, replay = await _cold_reads()
    print(
        f"{label}: in-memory append {append * 1e6:.2f} us; cold get_state(at_seq=1000) "
        f"{state * 1e3:.2f} ms; cold replay of 10,000 {10_000 / replay:,.0f} events/s"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "this tree"))

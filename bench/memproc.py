"""Scenario 8, one measurement per fresh process: `python -m bench.memproc KIND N [DIR]`.

Prints one JSON object. RSS comes from /proc/self/status (VmRSS now, VmHWM peak), so each
measurement runs in its own process and starts from that process's baseline.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any


def _status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024  # MiB
    return out


def _payload(i: int) -> dict[str, Any]:
    return {"tool": "search_flights", "query": "BER -> MUC", "step": i}


async def agentstore_memory(n: int) -> dict[str, Any]:
    """Peak RSS to hold `n` events in the in-memory backend."""
    import agentstore
    from agentstore import EventType, new_event

    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        gc.collect()
        before = _status()
        for k in range(0, n, 1000):
            await store.append_many(
                sid, [new_event(EventType.TOOL_CALLED, _payload(k + j)) for j in range(1000)]
            )
        gc.collect()
        after = _status()
    return {"before": before, "after": after, "events": n}


def _session_ids(root: str) -> list[str]:
    return [p.stem for p in sorted(Path(root, "sessions").glob("*.json"))]


async def agentstore_file_touch(n: int, root: str) -> dict[str, Any]:
    """RSS of a file-backed store after an append and a get_state on each of `n` sessions."""
    import agentstore
    from agentstore import EventType, new_event

    sids = _session_ids(root)[:n]
    marks = {}
    async with agentstore.open(root) as store:
        gc.collect()
        marks["opened"] = _status()
        for k, sid in enumerate(sids, 1):
            await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(k)))
            await store.get_state(sid)
            if k in (1000, n // 2, n):
                gc.collect()
                marks[f"after {k:,} sessions"] = _status()
    return {"marks": marks, "sessions": len(sids)}


async def agentstore_id_index(n: int, root: str) -> dict[str, Any]:
    """Memory and time of the file backend's per-session id index, built on first append."""
    import agentstore
    from agentstore import EventType, new_event

    async with agentstore.open(root, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        for k in range(0, n, 1000):
            await store.append_many(
                sid, [new_event(EventType.TOOL_CALLED, _payload(k + j)) for j in range(1000)]
            )
    # Timed and measured in two separate opens: tracemalloc slows allocation several times.
    async with agentstore.open(root, snapshot_interval=0) as store:
        await store.get_state(sid)  # open the log first, so only the index is timed
        t0 = time.perf_counter()
        await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(-1)))
        took = time.perf_counter() - t0
    async with agentstore.open(root, snapshot_interval=0) as store:
        await store.get_state(sid)
        gc.collect()
        tracemalloc.start()
        await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(-2)))
        gc.collect()
        size, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"events": n, "bytes": size, "first_append_s": took}


def langgraph_memory(n: int) -> dict[str, Any]:
    """Peak RSS to hold `n` checkpoints in langgraph's InMemorySaver (peers venv)."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.memory import InMemorySaver

    saver = InMemorySaver()
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    gc.collect()
    before = _status()
    for i in range(n):
        cp = empty_checkpoint()
        cp["channel_values"] = {"messages": _payload(i)}
        cp["channel_versions"] = {"messages": i + 2}
        config = saver.put(config, cp, {"step": i}, {"messages": i + 2})
    gc.collect()
    return {"before": before, "after": _status(), "events": n}


def eventsourcing_popo(n: int) -> dict[str, Any]:
    """Peak RSS to hold `n` events in eventsourcing's POPO recorder (peers venv)."""
    import uuid

    import orjson
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.popo import POPOApplicationRecorder

    rec = POPOApplicationRecorder()
    oid = uuid.uuid4()
    gc.collect()
    before = _status()
    for k in range(0, n, 1000):
        rec.insert_events(
            [
                StoredEvent(oid, k + j + 1, "bench:Appended", orjson.dumps(_payload(k + j)))
                for j in range(1000)
            ]
        )
    gc.collect()
    return {"before": before, "after": _status(), "events": n}


def main() -> None:
    kind, n = sys.argv[1], int(sys.argv[2])
    rest = sys.argv[3:]
    fn = globals()[kind]
    out = fn(n, *rest)
    if asyncio.iscoroutine(out):
        out = asyncio.run(out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Review of the file commit path (AIO syncs, the inbox): what was acknowledged survives.

A child process appends to many sessions at once (rounds with several logs in flight go
through the AIO syncs) and reports each append once it returned; it is killed with
SIGKILL mid-stream. Every acknowledged event must then be in its log, whole, in order;
the logs must read without error; and a new store must append after them. Also: tasks
cancelled while their appends are in flight leave each append whole or absent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio

import agentstore
from agentstore import new_event

SESSIONS = 12

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import agentstore

    async def writer(store, sid, k):
        for i in range(100_000):
            event = agentstore.new_event("custom", {"k": k, "i": i})
            stored = await store.append(sid, event)
            print(f"{sid} {stored.sequence_number} {event.id}", flush=True)

    async def main(path, sids):
        async with agentstore.open(path, snapshot_interval=0) as store:
            await asyncio.gather(*(writer(store, sid, k) for k, sid in enumerate(sids)))

    asyncio.run(main(sys.argv[1], sys.argv[2:]))
    """
)


async def test_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        sids = [(await store.create_session()).id for _ in range(SESSIONS)]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), *sids],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked: dict[str, list[tuple[int, str]]] = {sid: [] for sid in sids}
    try:
        assert child.stdout is not None
        for _ in range(3000):  # acknowledgements read, then the kill lands mid-stream
            line = await anyio.to_thread.run_sync(child.stdout.readline)
            sid, seq, event_id = line.split()
            acked[sid].append((int(seq), event_id))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        rest = child.stdout.read()  # acknowledged before the kill, not yet read
        for line in rest.splitlines():
            parts = line.split()
            if len(parts) == 3:  # the last line may be cut by the kill
                acked[parts[0]].append((int(parts[1]), parts[2]))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        for sid in sids:
            events = await store.replay(sid)
            assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
            ids = {e.sequence_number: e.id for e in events}
            for seq, event_id in acked[sid]:
                assert ids.get(seq) == event_id, (sid, seq)
            after = await store.append(sid, new_event("custom", "after"))
            assert after.sequence_number == len(events) + 1
            await store.verify(sid)


async def test_cancelled_tasks_leave_each_append_whole_or_absent(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        sids = [(await store.create_session()).id for _ in range(SESSIONS)]
        sent: dict[str, list[list[str]]] = {sid: [] for sid in sids}

        async def writer(sid: str) -> None:
            for i in range(10_000):
                batch = [new_event("custom", {"i": i, "j": j}) for j in range(3)]
                sent[sid].append([e.id for e in batch])
                await store.append_many(sid, batch)

        tasks = [asyncio.create_task(writer(sid)) for sid in sids]
        for _ in range(200):  # let rounds with many logs in flight go by
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sid in sids:
            events = await store.replay(sid)
            stored = [e.id for e in events]
            batches = sent[sid]
            whole = sum(1 for ids in batches if ids[0] in stored)
            assert stored == [i for ids in batches[:whole] for i in ids]  # whole, in order
            assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))

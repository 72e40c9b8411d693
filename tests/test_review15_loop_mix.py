"""Review 15 (loop commits and retries): a mixed load keeps every promise at once.

Sync rounds on the loop (c1ab011), the commit thread for contended sessions, retries by
id (3f4c68f..f198591) and another process writing the same logs, all at once: tasks of
one loop append batches to a few sessions, some tasks are cancelled mid-append, some
batches are sent again (a retry), and a writer process appends to half the sessions
meanwhile (the `flock`, catching up). Afterwards each log holds every acknowledged event
once, at the sequence number its answer gave; a retry's answer is the first answer; a
cancelled append is whole or absent; and the data directory verifies clean.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import agentstore
from agentstore import Event, new_event

_SESSIONS = 6
_TASKS = 24
_ROUNDS = 12

_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import agentstore
    from agentstore import new_event

    async def main():
        async with agentstore.open(sys.argv[1], snapshot_interval=0) as store:
            await store.get_session("s-0")
            print("ready", flush=True)
            for i in range(int(sys.argv[2])):
                sid = f"s-{i % 3}"
                batch = [
                    new_event("custom", {"w": i}).model_copy(update={"id": f"w-{i}-{k}"})
                    for k in range(1 + i % 3)
                ]
                await store.append_many(sid, batch)

    asyncio.run(main())
    """
)


def _batch(rng: random.Random, tag: str) -> list[Event]:
    return [
        new_event("custom", {"t": tag}).model_copy(update={"id": f"{tag}-{k}"})
        for k in range(rng.randint(1, 3))
    ]


async def test_a_mixed_load_keeps_every_append_once_in_its_place(tmp_path: Path) -> None:
    rng = random.Random(15)
    acknowledged: dict[str, tuple[str, int]] = {}  # id -> (session, sequence number)
    cancelled: list[tuple[str, list[str]]] = []
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        sids = [f"s-{k}" for k in range(_SESSIONS)]
        for sid in sids:
            await store.create_session(session_id=sid)
            await store.append(sid, new_event("custom", {"t": "open"}))
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), "300"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert writer.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(writer.stdout.readline), 60)
        assert ready == b"ready\n", writer.stderr.read().decode() if writer.stderr else ""

        async def task(n: int) -> None:
            local = random.Random(n)
            for r in range(_ROUNDS):
                sid = local.choice(sids)
                batch = _batch(local, f"t{n}-{r}")
                for _ in range(local.randint(0, 3)):  # arrive in another turn of the loop
                    await asyncio.sleep(0)
                stored = await store.append_many(sid, batch)
                for event in stored:
                    acknowledged[event.id] = (sid, event.sequence_number)
                if local.random() < 0.3:  # the same batch again: a retry
                    again = await store.append_many(sid, batch)
                    assert [(e.id, e.sequence_number) for e in again] == [
                        (e.id, e.sequence_number) for e in stored
                    ]
                    assert again == stored

        async def cancelled_one(n: int) -> None:
            sid = sids[n % _SESSIONS]
            batch = _batch(rng, f"c{n}")
            append = asyncio.ensure_future(store.append_many(sid, batch))
            for _ in range(n % 3):
                await asyncio.sleep(0)
            append.cancel()
            try:
                for event in await append:
                    acknowledged[event.id] = (sid, event.sequence_number)
            except asyncio.CancelledError:
                cancelled.append((sid, [e.id for e in batch]))

        await asyncio.gather(
            *(task(n) for n in range(_TASKS)), *(cancelled_one(n) for n in range(12))
        )
        try:
            _, err = writer.communicate(timeout=60)
        finally:
            writer.kill()
        assert writer.returncode == 0, err.decode()

    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        logs = {sid: await store.get_events(sid) for sid in sids}
        assert (await store.verify()).ok
    where = {}
    for sid, events in logs.items():
        assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
        counts = Counter(e.id for e in events)
        assert [i for i, c in counts.items() if c > 1] == [], sid
        where.update({e.id: (sid, e.sequence_number) for e in events})
    for event_id, place in acknowledged.items():
        assert where.get(event_id) == place, event_id
    for sid, ids in cancelled:
        present = [event_id in where for event_id in ids]
        assert all(present) or not any(present), (sid, ids, present)
    assert sum(1 for i in where if i.startswith("w-")) == sum(1 + i % 3 for i in range(300))

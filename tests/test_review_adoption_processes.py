"""Review of snapshot adoption across processes: each write-only store's state is the log's.

Three processes (this one and two children) append to one session of one data directory
at once, each through a store that never reads it (so its snapshots are folded from the
log and adopted), with idempotent retries and batches. When all are done, the state each
store serves must equal a full fold of the log.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio

import agentstore
from agentstore import Event, EventType, Metadata, new_event

WRITER = textwrap.dedent(
    """
    import asyncio, random, sys
    import agentstore
    from agentstore import EventType, Metadata, new_event

    async def main(path, session_id, seed):
        rng = random.Random(seed)
        async with agentstore.open(path, snapshot_interval=4) as store:
            print("ready", flush=True)
            if sys.stdin.readline() != "go\\n":
                return
            sent = []
            for _ in range(60):
                batch = [
                    new_event(EventType.LLM_RESPONSE, {"r": rng.random()},
                              metadata=Metadata(tokens_in=rng.randrange(50), cost_usd=0.5))
                    for _ in range(rng.randrange(1, 4))
                ]
                if sent and rng.random() < 0.3:
                    batch.append(rng.choice(sent))  # a retry: stored already
                await store.append_many(session_id, batch)
                sent += batch
            print("done", flush=True)
            if sys.stdin.readline() == "report\\n":
                state = await store.get_state(session_id)
                print(state.model_dump_json(), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def _batch(rng: random.Random) -> list[Event]:
    return [
        new_event(EventType.TOOL_CALLED, {"n": rng.random()}, Metadata(tokens_in=1))
        for _ in range(rng.randrange(1, 4))
    ]


async def test_three_processes_writing_one_session(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path, snapshot_interval=5) as store:
        sid = (await store.create_session()).id
        children = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(tmp_path), sid, str(seed)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for seed in (1, 2)
        ]
        try:
            for child in children:  # all three start writing together
                assert child.stdout is not None
                assert await anyio.to_thread.run_sync(child.stdout.readline) == "ready\n"
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            rng = random.Random(3)
            sent: list[Event] = []
            for _ in range(60):
                batch = _batch(rng)
                if sent and rng.random() < 0.3:
                    batch.insert(0, rng.choice(sent))
                await store.append_many(sid, batch)
                sent += batch
            for child in children:
                assert child.stdout is not None
                line = await anyio.to_thread.run_sync(child.stdout.readline)
                assert line == "done\n"
            # Another store of the directory (closing a Store closes its backend: one
            # made over `store`'s own would leave `store` closed).
            async with agentstore.open(tmp_path, snapshot_interval=0, cache_size=0) as fresh:
                truth = await fresh.get_state(sid)
            assert (await store.get_state(sid)).model_dump() == truth.model_dump()
            for child in children:
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write("report\n")
                child.stdin.flush()
                line = await anyio.to_thread.run_sync(child.stdout.readline)
                assert json.loads(line) == json.loads(truth.model_dump_json())
                assert child.wait(timeout=60) == 0
        finally:
            for child in children:
                child.kill()
                child.wait()
                for pipe in (child.stdin, child.stdout):
                    if pipe is not None:
                        pipe.close()

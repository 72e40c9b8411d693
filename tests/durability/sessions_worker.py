"""A child process for the group-commit kill test: tasks appending, each to its own session.

`python sessions_worker.py DATA_DIR RUN TASKS`: sessions `s0`..`s{TASKS-1}` exist; task K
appends operation I = 0, 1, 2, ... to `sK` forever (every fourth an `append_many` of three
events, the others one event, each with payload `{"run": RUN, "k": K, "i": I, "part": P}`)
and prints `ack K I FIRST LAST` once operation I (events FIRST..LAST) is acknowledged. With
sixteen sessions the commit thread syncs many logs per round (through AIO where it works).
Prints `ready` first.
"""

from __future__ import annotations

import asyncio
import sys

import agentstore


async def main(path: str, run: int, tasks: int) -> None:
    """Append until killed."""
    async with agentstore.open(path, snapshot_interval=0) as store:
        print("ready", flush=True)

        async def task(k: int) -> None:
            sid = f"s{k}"
            i = 0
            while True:
                parts = 3 if i % 4 == 3 else 1
                events = [
                    agentstore.new_event("custom", {"run": run, "k": k, "i": i, "part": p})
                    for p in range(parts)
                ]
                stored = await store.append_many(sid, events)
                first, last = stored[0].sequence_number, stored[-1].sequence_number
                sys.stdout.write(f"ack {k} {i} {first} {last}\n")
                sys.stdout.flush()
                i += 1

        await asyncio.gather(*(task(k) for k in range(tasks)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))

"""A child process for the durability tests: appends to a real store until told or killed.

Run as `python worker.py MODE ...`; it talks to the test over stdin/stdout, one line per
message, so the test can start several at once and kill them at any moment.

- `kill DATA_DIR SESSION SEED DURABILITY [MAX_SIZE]`: append the operations of
  `plan(SEED, MAX_SIZE)` forever,
  printing `ack SEED I FIRST LAST` once operation I (events FIRST..LAST) is acknowledged.
- `group DATA_DIR SESSION SEED TASKS MAX_SIZE`: TASKS tasks of one process append to one
  session at once, task K the operations of `plan(SEED + 2 * K, MAX_SIZE)`, printing
  `ack SEED' I FIRST LAST` (SEED' the task's seed) as each is acknowledged.
- `multi DATA_DIR SESSION NAME COUNT`: wait for `go`, append COUNT events, print `done`,
  wait for `check`, print the event count the process now sees through `get_state`.
- `create DATA_DIR ID...`: wait for `go`, try to create each session id, print `ok ID` or
  `exists ID` for each.
- `ops DATA_DIR SEED`: fork session `src`, import it under new ids, delete and prune
  sessions, forever: print `start OP ID` before each and `done OP ID` once it returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import agentstore

MAX_PAYLOAD = 1 << 20


@dataclass(frozen=True)
class Op:
    """One append (n == 1) or append_many (n > 1) of the kill test."""

    index: int
    sizes: tuple[int, ...]


def plan(seed: int, max_size: int = MAX_PAYLOAD) -> Iterator[Op]:
    """Yield the same operations for the same seed, forever (the test replays them).

    An odd seed gives large payloads only (256 KiB to 1 MiB), so that a kill is likely to
    land in the middle of a write; an even seed mostly small ones (log-uniform, 16 bytes
    to 1 MiB).
    """
    rng = random.Random(seed)
    index = 0
    while True:
        n = 1 if rng.random() < 0.7 else rng.randint(2, 4)
        if seed % 2:
            sizes = tuple(rng.randint(MAX_PAYLOAD // 4, MAX_PAYLOAD) for _ in range(n))
        else:
            sizes = tuple(int(16 * (MAX_PAYLOAD / 16) ** rng.random()) for _ in range(n))
        yield Op(index, tuple(min(size, max_size) for size in sizes))
        index += 1


def payload(seed: int, index: int, part: int, size: int) -> dict[str, Any]:
    """Return the payload of event `part` of operation `index` (deterministic)."""
    unit = hashlib.sha256(f"{seed}:{index}:{part}".encode()).hexdigest()
    return {"seed": seed, "op": index, "part": part, "pad": (unit * (size // 64 + 1))[:size]}


def send(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_plan(store: agentstore.Store, session_id: str, seed: int, max_size: int) -> None:
    """Append the operations of `plan(seed)` forever, printing `ack SEED I FIRST LAST`."""
    for op in plan(seed, max_size):
        events = [
            agentstore.new_event("custom", payload(seed, op.index, part, size))
            for part, size in enumerate(op.sizes)
        ]
        if len(events) == 1:
            stored = [await store.append(session_id, events[0])]
        else:
            stored = await store.append_many(session_id, events)
        send(f"ack {seed} {op.index} {stored[0].sequence_number} {stored[-1].sequence_number}")


async def kill_mode(path: str, session_id: str, seed: int, durability: str, max_size: int) -> None:
    async with agentstore.open(path, durability=durability, snapshot_interval=7) as store:  # type: ignore[arg-type]
        send("ready")
        await run_plan(store, session_id, seed, max_size)


async def group_mode(path: str, session_id: str, seed: int, tasks: int, max_size: int) -> None:
    async with agentstore.open(path, snapshot_interval=7) as store:
        send("ready")
        tasks_ = (run_plan(store, session_id, seed + 2 * k, max_size) for k in range(tasks))
        await asyncio.gather(*tasks_)


async def multi_mode(path: str, session_id: str, name: str, count: int) -> None:
    async with agentstore.open(path, snapshot_interval=50) as store:
        send("ready")
        if sys.stdin.readline().strip() != "go":
            return
        for i in range(count):
            await store.append(session_id, agentstore.new_event("custom", {"w": name, "i": i}))
        # Fill this process's state cache now, so the check below must notice the events
        # the other processes appended after it.
        await store.get_state(session_id)
        send("done")
        if sys.stdin.readline().strip() != "check":
            return
        state = await store.get_state(session_id)
        events = await store.get_events(session_id)
        send(f"state {state.event_count} {state.version} {len(events)}")


async def create_mode(path: str, ids: list[str]) -> None:
    async with agentstore.open(path) as store:
        send("ready")
        if sys.stdin.readline().strip() != "go":
            return
        for session_id in ids:
            try:
                await store.create_session(session_id=session_id)
            except agentstore.SessionExistsError:
                send(f"exists {session_id}")
            else:
                send(f"ok {session_id}")


async def ops_mode(path: str, seed: int) -> None:
    rng = random.Random(seed)
    async with agentstore.open(path, snapshot_interval=0) as store:
        source = await store.get_session("src")
        events = await store.get_events("src")
        send("ready")
        done: list[str] = []

        def moved(sid: str) -> list[agentstore.Event]:
            return [e.model_copy(update={"session_id": sid}) for e in events]

        for i in range(1_000_000):
            op = rng.choice(["fork", "import", "import", "delete", "prune"])
            if op == "fork":
                send("start fork ?")
                forked = await store.fork("src", at_seq=rng.randint(1, len(events)))
                done.append(forked.id)
                send(f"done fork {forked.id}")
            elif op == "import":
                sid = f"imp-{seed}-{i}"
                send(f"start import {sid}")
                await store.import_session(source.model_copy(update={"id": sid}), moved(sid))
                done.append(sid)
                send(f"done import {sid}")
            elif op == "delete" and done:
                sid = done.pop(rng.randrange(len(done)))
                send(f"start delete {sid}")
                await store.delete_session(sid)
                send(f"done delete {sid}")
            elif op == "prune":
                sid = f"old-{seed}-{i}"
                await store.import_session(
                    source.model_copy(update={"id": sid, "labels": {"prunable": "yes"}}),
                    moved(sid)[:3],
                )
                send(f"start prune {sid}")
                later = datetime.now(UTC) + timedelta(days=3650)
                pruned = await store.prune(
                    older_than=timedelta(days=1), labels={"prunable": "yes"}, now=later
                )
                for gone in pruned:
                    send(f"done prune {gone.session.id}")


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "kill":
        max_size = int(args[4]) if len(args) > 4 else MAX_PAYLOAD
        asyncio.run(kill_mode(args[0], args[1], int(args[2]), args[3], max_size))
    elif mode == "group":
        asyncio.run(group_mode(args[0], args[1], int(args[2]), int(args[3]), int(args[4])))
    elif mode == "multi":
        asyncio.run(multi_mode(args[0], args[1], args[2], int(args[3])))
    elif mode == "create":
        asyncio.run(create_mode(args[0], args[1:]))
    elif mode == "ops":
        asyncio.run(ops_mode(args[0], int(args[1])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Kill tests: SIGKILL a process at random moments; nothing acknowledged is lost.

A child appends single events and `append_many` batches (payloads up to 1 MiB) and reports
each acknowledged operation on a pipe; the test kills it with SIGKILL at a random moment,
reopens the store, and checks that every acknowledged event is present and equal, that
every batch is all or nothing, and that the log verifies clean. Several rounds append to
the same session, so each round also starts from whatever the previous kill left. The
last test kills a process that forks, imports, deletes and prunes whole sessions.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest

import agentstore
from tests.durability.conftest import expect_line, finish, start_worker
from tests.durability.worker import payload, plan

KILLS = 32
SMALL = 64 * 1024


@pytest.mark.slow
async def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        session = await store.create_session(session_id="killed")
    rng = random.Random(int.from_bytes(os.urandom(4)))
    expected: dict[int, tuple[int, int, int]] = {}  # seq -> (seed, op, part)
    torn_rounds = 0
    log = data / "events" / "killed.jsonl"
    for round_no in range(KILLS):
        # Odd rounds: large payloads, killed the moment the log starts to grow (most
        # likely mid-write, the case that leaves a torn line). Even rounds: mostly small
        # payloads, killed after a random number of acknowledgements plus a random delay.
        watch = round_no % 2 == 1
        seed = 2 * rng.randrange(1 << 20) + watch
        durability = "fsync" if round_no % 4 < 2 else "flush"
        proc = start_worker("kill", str(data), session.id, str(seed), durability)
        try:
            expect_line(proc, "ready")
            lines = [expect_line(proc, "ack") + "\n" for _ in range(rng.randrange(4))]
            if watch:
                _wait_for_growth(log)
            else:
                await anyio.sleep(rng.random() * 0.03)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            # A line cut short by the kill has no newline: that operation is not counted.
            lines += proc.stdout.read().splitlines(keepends=True)
            acks = [line.split() for line in lines if line.endswith("\n")]
        finally:
            finish(proc)
        acked: dict[int, tuple[int, int]] = {
            int(a[2]): (int(a[3]), int(a[4])) for a in acks if len(a) == 5 and a[0] == "ack"
        }
        size_before = log.stat().st_size
        async with agentstore.open(data) as store:
            # Opening the session repairs a torn tail; only this round's events are new.
            new = await store.get_events(session.id, from_seq=len(expected) + 1)
            if log.stat().st_size != size_before:
                torn_rounds += 1
            _check_round(new, len(expected), expected, seed, acked)
            if round_no % 8 == 7:
                report = await store.verify()
                assert report.ok, [str(p) for p in report.problems]
    async with agentstore.open(data) as store:
        events = await store.get_events(session.id)
        assert len(events) == len(expected)
        for event in events:
            seed, index, part = expected[event.sequence_number]
            assert (event.payload["seed"], event.payload["op"]) == (seed, index)
            assert event.payload["part"] == part
        state = await store.get_state(session.id)
        assert state.event_count == len(expected)
        report = await store.verify()
        assert report.ok, [str(p) for p in report.problems]
    quarantined = list((data / "events").glob("killed.jsonl.torn-*"))
    print(f"\n{KILLS} kills, {len(expected)} events, {torn_rounds} torn tails repaired")
    assert len(quarantined) == torn_rounds


def _check_round(
    new: list[agentstore.Event],
    before: int,
    expected: dict[int, tuple[int, int, int]],
    seed: int,
    acked: dict[int, tuple[int, int]],
) -> None:
    """Check one round's events: whole operations, in order, as the child sent them."""
    assert [e.sequence_number for e in new] == list(range(before + 1, before + len(new) + 1))
    by_op: dict[int, list[agentstore.Event]] = defaultdict(list)
    for event in new:
        assert event.payload["seed"] == seed
        by_op[event.payload["op"]].append(event)
    assert list(by_op) == list(range(len(by_op))), "operations appear in order, none missing"
    assert set(acked) <= set(by_op), "every acknowledged operation is in the log"
    assert len(by_op) - len(acked) <= 1, "at most the one operation in flight is extra"
    ops = plan(seed)
    for _ in range(len(by_op)):
        op = next(ops)
        stored = by_op[op.index]
        assert len(stored) == len(op.sizes), f"operation {op.index} is all or nothing"
        for part, (event, size) in enumerate(zip(stored, op.sizes, strict=True)):
            assert event.payload == payload(seed, op.index, part, size)
            expected[event.sequence_number] = (seed, op.index, part)
        if op.index in acked:
            assert acked[op.index] == (stored[0].sequence_number, stored[-1].sequence_number)


def _wait_for_growth(path: Path, timeout: float = 5.0) -> None:
    size = path.stat().st_size
    deadline = time.monotonic() + timeout
    while path.stat().st_size == size and time.monotonic() < deadline:
        pass


@pytest.mark.slow
async def test_sigkill_among_concurrent_writers(tmp_path: Path) -> None:
    """Three processes append to one session; one after another is killed and replaced."""
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        session = await store.create_session(session_id="shared")
    rng = random.Random(int.from_bytes(os.urandom(4)))
    next_seed = iter(range(100, 10_000, 2))  # even: mostly small payloads (see plan)
    acks: dict[int, list[str]] = {}
    running: dict[int, Any] = {}

    def spawn() -> None:
        seed = next(next_seed)
        proc = start_worker("kill", str(data), session.id, str(seed), "fsync", str(SMALL))
        expect_line(proc, "ready")
        running[seed] = proc

    def reap(seed: int) -> None:
        proc = running.pop(seed)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        acks[seed] = [
            line for line in proc.stdout.read().splitlines(keepends=True) if line.endswith("\n")
        ]
        finish(proc)

    try:
        for _ in range(3):
            spawn()
        for _ in range(8):
            await anyio.sleep(rng.random() * 0.05)
            reap(rng.choice(sorted(running)))
            spawn()
        for seed in sorted(running):
            reap(seed)
    finally:
        for proc in running.values():
            finish(proc)
    async with agentstore.open(data) as store:
        events = await store.get_events(session.id)
        assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
        by_seed: dict[int, list[agentstore.Event]] = defaultdict(list)
        for event in events:
            by_seed[event.payload["seed"]].append(event)
        for seed, lines in acks.items():
            acked = {int(a.split()[2]): (int(a.split()[3]), int(a.split()[4])) for a in lines}
            mine = by_seed.get(seed, [])
            by_op: dict[int, list[agentstore.Event]] = defaultdict(list)
            for event in mine:
                by_op[event.payload["op"]].append(event)
            assert list(by_op) == list(range(len(by_op)))
            assert set(acked) <= set(by_op)
            assert len(by_op) - len(acked) <= 1
            ops = plan(seed, SMALL)
            for _ in range(len(by_op)):
                op = next(ops)
                stored = by_op[op.index]
                assert [e.payload for e in stored] == [
                    payload(seed, op.index, part, size) for part, size in enumerate(op.sizes)
                ]
                # A batch is contiguous even with other writers appending at the same time.
                seqs = [e.sequence_number for e in stored]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
                if op.index in acked:
                    assert acked[op.index] == (seqs[0], seqs[-1])
        assert sum(len(v) for v in by_seed.values()) == len(events)
        report = await store.verify()
        assert report.ok, [str(p) for p in report.problems]


OPS_KILLS = 16


@pytest.mark.slow
async def test_sigkill_during_fork_import_delete_and_prune(tmp_path: Path) -> None:
    """Whole-session operations killed midway: every session is whole or absent.

    A child forks a 600-event session, imports it under new ids, deletes what it made and
    prunes; it is killed at a random moment, over and over. After each kill: `verify` is
    clean (nothing half-made, no stray temp file once a writer opened the directory);
    every fork and import that exists has all its events; what was acknowledged as done
    is there (or gone, for deletions); and an import cut short can be run again.
    """
    data = tmp_path / "data"
    pad = "x" * 2000
    async with agentstore.open(data, snapshot_interval=0) as store:
        await store.create_session(session_id="src", name="source")
        await store.append_many(
            "src", [agentstore.new_event("custom", {"i": i, "pad": pad}) for i in range(600)]
        )
        source_events = await store.get_events("src")
    rng = random.Random(int.from_bytes(os.urandom(4)))
    made: set[str] = set()  # acknowledged forks and imports, not acknowledged as deleted
    gone: set[str] = set()  # acknowledged deletions
    counts: dict[str, int] = defaultdict(int)
    for _ in range(OPS_KILLS):
        proc = start_worker("ops", str(data), str(rng.randrange(1 << 30)))
        try:
            expect_line(proc, "ready")
            await anyio.sleep(0.02 + rng.random() * 0.3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            said = [
                line.split()
                for line in proc.stdout.read().splitlines(keepends=True)
                if line.endswith("\n")
            ]
        finally:
            finish(proc)
        pending_import = None
        for word, op, sid in said:
            counts[f"{word} {op}"] += 1
            if word == "done" and op in ("fork", "import"):
                made.add(sid)
            elif op == "delete":  # started: it may or may not be gone; done: it is
                made.discard(sid)
                if word == "done":
                    gone.add(sid)
            elif word == "done" and op == "prune":
                gone.add(sid)
            if op == "import":
                pending_import = sid if word == "start" else None
        async with agentstore.open(data, snapshot_interval=0) as store:
            report = await store.verify()
            assert report.ok, [str(p) for p in report.problems]
            assert not [n for n in report.notes if "temporary" in n]
            ids = {s.id for s in await store.list_sessions(limit=10_000)}
            assert made <= ids and not (gone & ids)
            for sid in ids - {"src"}:
                session = await store.get_session(sid)
                events = await store.get_events(sid)
                if "forked_from" in session.labels:
                    whole = int(session.labels["forked_at"])
                else:
                    whole = 3 if sid.startswith("old-") else len(source_events)
                assert len(events) == whole == session.event_count, sid
                for mine, theirs in zip(events, source_events, strict=False):
                    assert (mine.payload, mine.timestamp) == (theirs.payload, theirs.timestamp)
            if pending_import is not None and pending_import not in ids:
                # An import killed midway left nothing: running it again succeeds.
                source = await store.get_session("src")
                again = source.model_copy(update={"id": pending_import})
                await store.import_session(
                    again,
                    [e.model_copy(update={"session_id": pending_import}) for e in source_events],
                )
                assert len(await store.get_events(pending_import)) == len(source_events)
                made.add(pending_import)
                counts["re-imported"] += 1
    print(f"\n{OPS_KILLS} kills during whole-session operations: {dict(counts)}")
    assert counts["done fork"] and counts["done import"] and counts["done delete"]

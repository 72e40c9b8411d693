"""Kill test: SIGKILL a process that appends, at random moments; nothing acknowledged is lost.

A child appends single events and `append_many` batches (payloads up to 1 MiB) and reports
each acknowledged operation on a pipe; the test kills it with SIGKILL at a random moment,
reopens the store, and checks that every acknowledged event is present and equal, that
every batch is all or nothing, and that the log verifies clean. Several rounds append to
the same session, so each round also starts from whatever the previous kill left.
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
            int(a[1]): (int(a[2]), int(a[3])) for a in acks if len(a) == 4 and a[0] == "ack"
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
            acked = {int(a.split()[1]): (int(a.split()[2]), int(a.split()[3])) for a in lines}
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

"""Review 14: idempotent retries on the file backend's id index (`idindex.py`).

The index says "maybe" for an id with an entry, and the append looks it up in the block
the entry names. A retried batch of 5,000 stored events did that once an event (2,048
lines read and split for each), then answered each with a read of its own from a
checkpoint: 15 s in all, where a fresh batch of 5,000 takes 0.3 s (on the previous
commit, before the index: 4 s, the answers' reads alone). Now the hits are looked up a
block at a time and the answers read in one pass over their lines: 0.14 s.

Also here, as real processes: two writers with different `PYTHONHASHSEED`s (an index is
per process, its hashes keyed per process) append the same batches of ids at once, one of
them is SIGKILLed mid-way, and a third runs them all again: every event is stored once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.codec import encode_line
from agentstore.events import Event
from tests.cli_process import agentstore_cli


def _events(n: int, tag: str = "e") -> list[Event]:
    return [new_event("custom", {"i": i}).model_copy(update={"id": f"{tag}-{i}"}) for i in range(n)]


async def test_a_large_retried_batch_is_looked_up_a_block_at_a_time(tmp_path: Path) -> None:
    events = _events(20_000)
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        for k in range(0, 20_000, 5000):
            await store.append_many(sid, events[k : k + 5000])
        stored = await store.get_events(sid)
    log = tmp_path / "events" / f"{sid}.jsonl"
    before = log.read_bytes()
    async with agentstore.open(tmp_path) as store:  # the index built from the file
        started = time.perf_counter()
        again = await store.append_many(sid, events[15_000:])
        took = time.perf_counter() - started
        assert again == stored[15_000:]
        assert log.read_bytes() == before
        # 15 s on the previous commit; 0.14 s here (a fresh batch of 5,000: 0.3 s).
        assert took < 3, f"a retry of 5,000 stored events took {took:.1f} s"
        # Stored events spread over the log (every 9th), between new ones, in one batch:
        # 7.6 s when each answer was read on its own (from its checkpoint); 0.3 s here.
        fresh = _events(2200, "new")
        mixed: list[Event] = []
        for k in range(2200):
            mixed += [events[k * 9], fresh[k]]
        started = time.perf_counter()
        got = await store.append_many(sid, mixed)
        took = time.perf_counter() - started
        assert got[::2] == [stored[k * 9] for k in range(2200)]
        assert [e.sequence_number for e in got[1::2]] == list(range(20_001, 22_201))
        assert took < 2, f"a batch of 2,200 retries and 2,200 new events took {took:.1f} s"
    async with agentstore.open(tmp_path) as store:
        assert await store.append_many(sid, mixed) == got
        assert len(await store.get_events(sid)) == 22_200


@pytest.mark.parametrize("n", [1023, 1024, 1025])
async def test_a_batch_longer_than_a_block_retried_at_a_block_boundary(
    tmp_path: Path, n: int
) -> None:
    events = _events(n + 1500)
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, events[:n])
    async with agentstore.open(tmp_path) as store:
        # Two stored events, then 1,500 new ones: more than a block, from its boundary.
        batch = [events[n - 2], events[n - 1], *events[n:]]
        got = await store.append_many(sid, batch)
        assert [e.sequence_number for e in got] == [n - 1, n, *range(n + 1, n + 1501)]
        # Retried in the same process, then by a new one, and cut differently.
        assert await store.append_many(sid, batch) == got
    async with agentstore.open(tmp_path) as store:
        stored = await store.get_events(sid)
        assert await store.append_many(sid, events[n - 700 : n + 700]) == stored[n - 700 : n + 700]
        assert await store.append_many(sid, events) == stored
        assert [e.id for e in await store.get_events(sid)] == [e.id for e in events]


_WRITER = """
import asyncio, sys
import agentstore
from agentstore import new_event
from agentstore.codec import encode_line

async def main(data, total, size):
    async with agentstore.open(data) as store:
        try:
            await store.create_session(session_id="s")
        except agentstore.SessionExistsError:
            pass
        for start in range(0, total, size):
            batch = [
                new_event("custom", {"i": i, "pad": "p" * 300}).model_copy(update={"id": f"e-{i}"})
                for i in range(start, min(start + size, total))
            ]
            await store.append_many("s", batch)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""

_TOTAL = 4000


def _writer(data: Path, seed: int, size: int) -> subprocess.Popen[bytes]:
    """Start a writer process; its stderr goes to `writer-SEED.log` beside `data`."""
    with open(data.parent / f"writer-{seed}.log", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(data), str(_TOTAL), str(size)],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            stderr=err,
        )


def _stderr(data: Path, seed: int) -> str:
    return (data.parent / f"writer-{seed}.log").read_text()


def test_writers_with_other_hash_seeds_and_a_sigkill_store_each_event_once(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    log = data / "events" / "s.jsonl"
    killed = _writer(data, 1, 97)  # batches of 97: their ends cross the blocks' anywhere
    other = _writer(data, 2, 131)
    try:
        while killed.poll() is None and not (log.exists() and log.stat().st_size > 600_000):
            pass  # watching the file: the writers append as fast as they can
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        other.wait(300)
    finally:
        for proc in (killed, other):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert killed.returncode == -signal.SIGKILL, "the writer finished before it was killed"
    assert other.returncode == 0, _stderr(data, 2)
    # A third process, another seed, runs every batch again, cut another way: all retries.
    third = _writer(data, 3, 1000)
    third.wait(300)
    assert third.returncode == 0, _stderr(data, 3)
    lines = log.read_bytes().splitlines()
    assert len(lines) == _TOTAL
    verified = agentstore_cli("verify", "--data-dir", data)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    async def ids() -> list[str]:
        async with agentstore.open(data) as store:
            return [e.id for e in await store.get_events("s")]

    got = asyncio.run(ids())
    assert sorted(got, key=lambda i: int(i[2:])) == [f"e-{i}" for i in range(_TOTAL)]
    assert len(set(got)) == _TOTAL


async def test_an_id_written_twice_by_hand_is_answered_with_its_first_line(
    tmp_path: Path,
) -> None:
    events = _events(3000)
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, events)
        stored = await store.get_events(sid)
    log = tmp_path / "events" / f"{sid}.jsonl"
    # Line 3001 repeats the id of line 5, with another payload (a hand edit).
    with log.open("ab") as out:
        now = datetime.now(UTC)
        out.write(encode_line(events[4].id, sid, 3001, "custom", b'"hand"', now, b"{}"))
    before = log.read_bytes()
    async with agentstore.open(tmp_path) as store:
        # Another stored id from the later line's block first: the blocks are searched
        # in order all the same.
        got = await store.append_many(sid, [events[2990], events[4]])
        assert got == [stored[2990], stored[4]]
        assert log.read_bytes() == before

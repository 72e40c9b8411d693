"""Review: every filter of a read, across many thread hops, against the events themselves.

The file backend now reads a log's bytes on a worker thread a hop at a time and decodes
them on the loop a page at a time (`reading.py`, `scan.Scan`); a read may start from
checkpoints earlier reads learned. Here hops and chunks are made tiny (and some lines
longer than a chunk) so that a session of a few thousand events crosses hundreds of hop,
chunk and page boundaries and several checkpoints; each read, cold or warm, must return
exactly what filtering the whole session in Python returns.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest

import agentstore
from agentstore import Event, Store, new_event
from agentstore.backends.file import reading
from tests.conftest import GO_LONG

N = 2600
SEEDS = [1, 2, 3]
TYPES = ("tool_called", "tool_result", "llm_response", "custom_note")


@pytest.fixture
def tiny_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "HOP_BYTES", 7 * 1024)
    monkeypatch.setattr("agentstore.backends.file.lines.READ_CHUNK", 5 * 1024 + 3)
    # Many checkpoints: later reads start from them, or walk back from a later one.
    monkeypatch.setattr("agentstore.backends.file.scan.CHECKPOINT_EVERY", 64)


async def _fill(store: Store, rng: random.Random) -> str:
    sid = (await store.create_session()).id
    at = 0
    while at < N:
        count = min(rng.choice((1, 7, 50, 300)), N - at)
        batch = []
        for i in range(at, at + count):
            # Now and then a line longer than a chunk: it is joined across chunks.
            size = 9000 if i % 397 == 5 else i % 300
            batch.append(new_event(TYPES[(i * 7) % 4], {"i": i, "pad": "y" * size}))
        await store.append_many(sid, batch)
        at += count
    return sid


def _expected(
    every: list[Event],
    types: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    from_seq: int | None,
    to_seq: int | None,
    limit: int | None,
) -> list[int]:
    out = []
    for e in every:
        assert e.timestamp is not None
        if from_seq is not None and e.sequence_number < from_seq:
            continue
        if to_seq is not None and e.sequence_number > to_seq:
            continue
        if types is not None and str(e.type) not in types:
            continue
        if since is not None and e.timestamp < since:
            continue
        if until is not None and e.timestamp > until:
            continue
        out.append(e.sequence_number)
    return out if limit is None else out[:limit]


async def _read_and_expect(
    store: Store,
    sid: str,
    every: list[Event],
    types: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    from_seq: int | None,
    to_seq: int | None,
    limit: int | None,
) -> tuple[list[Event], list[int]]:
    """The store's replay with these filters, and the sequence numbers it must return."""
    got = await store.replay(
        sid, types=types, since=since, until=until, from_seq=from_seq, to_seq=to_seq, limit=limit
    )
    return got, _expected(every, types, since, until, from_seq, to_seq, limit)


async def _check_random_reads(store: Store, sid: str, every: list[Event], seed: int) -> None:
    rng = random.Random(seed)
    stamps = [e.timestamp for e in every]
    for _ in range(60):
        types = rng.choice([None, None, rng.sample(TYPES, rng.randint(1, 3)), ["absent"]])
        since = rng.choice([None, None, rng.choice(stamps)])
        until = rng.choice([None, None, rng.choice(stamps)])
        from_seq = rng.choice([None, 0, 1, rng.randint(1, N + 3), 1024, 1025, 2048, N])
        to_seq = rng.choice([None, None, rng.randint(1, N + 3), 1023, 1024, 2049, N])
        limit = rng.choice([None, None, 1, rng.randint(1, 400), 1500])
        filters = (types, since, until, from_seq, to_seq, limit)
        got, want = await _read_and_expect(store, sid, every, *filters)
        assert [e.sequence_number for e in got] == want, filters
        by_seq = {e.sequence_number: e for e in every}
        assert all(e == by_seq[e.sequence_number] for e in got), filters


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_filters_across_tiny_hops_match_the_events(
    tmp_path: Path, tiny_hops: None, seed: int
) -> None:
    rng = random.Random(seed)
    async with agentstore.open(tmp_path) as store:
        sid = await _fill(store, rng)
        every = await store.replay(sid)
        assert [e.sequence_number for e in every] == list(range(1, N + 1))
        assert [e.payload["i"] for e in every] == list(range(N))
        await _check_random_reads(store, sid, every, seed)  # warm: checkpoints learned
    async with agentstore.open(tmp_path) as store:
        await _check_random_reads(store, sid, every, seed + 100)  # cold, then warming up


async def test_random_filters_in_memory_match_the_events() -> None:
    rng = random.Random(7)
    async with agentstore.open(in_memory=True) as store:
        sid = await _fill(store, rng)
        every = await store.replay(sid)
        assert [e.sequence_number for e in every] == list(range(1, N + 1))
        await _check_random_reads(store, sid, every, 7)


@pytest.mark.parametrize("seed", [5, 6])
async def test_random_filters_on_a_go_log_across_tiny_hops(
    go_data: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    # Lines of the Go original: no id, no checksum (each skipped line is decoded in full
    # to be sure it is sound), nanosecond timestamps.
    monkeypatch.setattr(reading, "HOP_BYTES", 2 * 1024)
    monkeypatch.setattr("agentstore.backends.file.lines.READ_CHUNK", 1024 + 9)
    monkeypatch.setattr("agentstore.backends.file.scan.CHECKPOINT_EVERY", 16)
    async with agentstore.open(go_data, read_only=True) as store:
        every = await store.replay(GO_LONG)
        assert [e.sequence_number for e in every] == list(range(1, len(every) + 1))
        rng = random.Random(seed)
        stamps = [e.timestamp for e in every]
        kinds = sorted({str(e.type) for e in every})
        for _ in range(60):
            types = rng.choice([None, rng.sample(kinds, rng.randint(1, len(kinds)))])
            since = rng.choice([None, rng.choice(stamps)])
            until = rng.choice([None, rng.choice(stamps)])
            from_seq = rng.choice([None, rng.randint(1, len(every) + 2)])
            to_seq = rng.choice([None, rng.randint(1, len(every) + 2)])
            limit = rng.choice([None, rng.randint(1, 60)])
            filters = (types, since, until, from_seq, to_seq, limit)
            got, want = await _read_and_expect(store, GO_LONG, every, *filters)
            assert [e.sequence_number for e in got] == want

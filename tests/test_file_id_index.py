"""The file backend's id index (`idindex.py`): hashes, never the id strings, and never wrong.

An append skips an event whose id the session has (an idempotent retry) and answers it
with the stored event. The index says only "maybe": a hit is looked up in the log, so a
retry after a restart (the index built from the file) is answered from the file, and two
ids sharing a hash cannot make an append drop an event that was never stored.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

import agentstore
from agentstore import ConcurrencyError, new_event
from agentstore.backends.file import idindex
from agentstore.backends.file.idindex import IdIndex
from agentstore.events import Event


def _events(n: int, start: int = 0) -> list[Event]:
    return [new_event("custom", {"i": i}) for i in range(start, start + n)]


async def test_a_retry_after_a_restart_is_answered_with_the_stored_event(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        events = _events(2600)
        for k in range(0, 2600, 100):
            await store.append_many(sid, events[k : k + 100])
        stored = await store.get_events(sid)
    log = tmp_path / "events" / f"{sid}.jsonl"
    before = log.read_bytes()
    # A new process: its index is built from the file on its first append. Retries from
    # each side of a block (1024 events) and both ends of the log.
    picks = [0, 1022, 1023, 1024, 2047, 2048, 2599]
    async with agentstore.open(tmp_path) as store:
        for i in picks:
            assert await store.append(sid, events[i]) == stored[i]
        again = await store.append_many(sid, [events[i] for i in picks])
        assert again == [stored[i] for i in picks]
        # Only repeats: answered whatever `expected_seq` says (nothing to write).
        stale = await store.append_many(sid, [events[5], events[6]], expected_seq=3)
        assert stale == stored[5:7]
        assert log.read_bytes() == before  # nothing written
        # A repeat and a new event in one batch: the new one only is written.
        fresh = new_event("custom", "fresh")
        mixed = await store.append_many(sid, [events[1500], fresh, events[3]])
        assert mixed[0] == stored[1500] and mixed[2] == stored[3]
        assert mixed[1].sequence_number == 2601
        with pytest.raises(ConcurrencyError):
            await store.append_many(sid, [events[7], new_event("custom", "x")], expected_seq=5)
        assert len(await store.get_events(sid)) == 2601


async def test_another_processs_events_are_retries_too(tmp_path: Path) -> None:
    # Two stores on one directory: each has its own views (and locks), as two processes.
    async with agentstore.open(tmp_path) as one, agentstore.open(tmp_path) as two:
        sid = (await one.create_session()).id
        await one.append_many(sid, _events(10))  # one's index is built
        theirs = _events(1100, 10)
        for k in range(0, 1100, 275):
            await two.append_many(sid, theirs[k : k + 275])
        stored = await two.get_events(sid, from_seq=11)
        # one reads two's lines on its next append, and knows their ids.
        assert await one.append_many(sid, [theirs[0], theirs[1099]]) == [stored[0], stored[1099]]
        assert len(await one.get_events(sid)) == 1110


def _collide(monkeypatch: pytest.MonkeyPatch, pairs: dict[str, str]) -> None:
    """Give each key of `pairs` the hash of its value: a forged 64-bit collision."""
    real = idindex.digest
    monkeypatch.setattr(idindex, "digest", lambda event_id: real(pairs.get(event_id, event_id)))


@pytest.mark.parametrize("restart", [False, True])
async def test_a_digest_collision_cannot_drop_an_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart: bool
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(agentstore.open(tmp_path))
        sid = (await store.create_session()).id
        first = _events(1500)
        for k in range(0, 1500, 500):
            await store.append_many(sid, first[k : k + 500])
        if restart:  # the index is built from the file, with the forged digest
            await stack.aclose()
            store = await stack.enter_async_context(agentstore.open(tmp_path))
        # New ids whose digest equals a stored event's (either side of a block), and one
        # that collides with an event earlier in its own batch.
        twins = _events(4, 9000)
        later = _events(3, 9100)
        _collide(
            monkeypatch,
            {
                twins[0].id: first[0].id,
                twins[1].id: first[1023].id,
                twins[2].id: first[1499].id,
                twins[3].id: later[0].id,
            },
        )
        batch = [twins[0], later[0], twins[1], twins[3], later[1], twins[2], later[2]]
        got = await store.append_many(sid, batch)
        assert [e.sequence_number for e in got] == list(range(1501, 1508))
        assert [e.id for e in got] == [e.id for e in batch]
        single = new_event("custom", "alone")
        _collide(monkeypatch, {single.id: first[700].id})
        assert (await store.append(sid, single)).sequence_number == 1508
        # Renumbered after the collisions: each id still answers as a retry.
        stored = await store.get_events(sid)
        assert len(stored) == 1508
        again = await store.append_many(sid, [*batch, single, first[0], first[1499]])
        assert again == [*stored[1500:1508], stored[0], stored[1499]]
        assert len(await store.get_events(sid)) == 1508


async def test_every_id_colliding_still_appends_each_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idindex, "digest", lambda event_id: 12345)
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        events = _events(60)
        for k in range(0, 60, 20):
            await store.append_many(sid, events[k : k + 20] + events[k : k + 2])
        for event in events[:5]:
            await store.append(sid, event)
        stored = await store.get_events(sid)
    assert [e.id for e in stored] == [e.id for e in events]
    async with agentstore.open(tmp_path) as store:  # the index built from the file
        assert await store.append_many(sid, events[::7]) == stored[::7]
        assert (await store.append(sid, new_event("custom", 1))).sequence_number == 61


def test_the_index_never_forgets_an_id_it_admitted() -> None:
    index = IdIndex()
    ids = [f"event-{i}" for i in range(30_000)]
    for k in range(0, 30_000, 1000):
        assert index.admit(ids[k : k + 1000], k) is None
    assert len(index) == 30_000
    assert index.hits(ids) == list(range(30_000))
    assert index.hits(["event-x", "event-30000"]) is None
    # Numbered from 1 in order, in calls of 1000: entry i names block i // 1024 or the one
    # before it.
    for i in (0, 1022, 1023, 1024, 2047, 29_999):
        (hint,) = index.hints(ids[i])
        assert hint in ((i + 1) // 1024, (i + 1) // 1024 - 1)
    # `undo` takes back exactly what an `admit` added.
    more = ["new-1", ids[3], "new-2"]
    hits = index.admit(more, 30_000)
    assert hits == [1]
    index.undo(more, 30_000, hits)
    assert len(index) == 30_000 and index.hits(["new-1", "new-2"]) is None

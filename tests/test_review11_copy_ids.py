"""Review 11: the ids a paged session creation remembers, a few bytes each.

Fork, import and `agentstore copy` create a session a page at a time; the check that no id
comes twice (the import's refusal, the writer's skip of an id already written) held every
id in dicts of the strings, twice: about 170 bytes an event. They are digests now
(`agentstore.backends.idset`), and a writer's hit is looked up in what it wrote.
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agentstore
from agentstore import Event, Store, new_event
from agentstore.backends import idset
from agentstore.backends.base import PendingEvent
from agentstore.backends.idset import CheckedPage
from agentstore.store.lifecycle_ops import import_session_of
from agentstore.store.validate import pending_from_stored


def test_id_numbers_name_the_first_number_of_each_id() -> None:
    ids = idset.IdNumbers()
    names = [f"id-{n}" for n in range(5000)]  # past several doublings of the buckets
    order = list(range(len(names)))
    random.Random(7).shuffle(order)
    for number, n in enumerate(order, 1):
        assert ids.setdefault(names[n], number) == number
    for number, n in enumerate(order, 1):
        assert ids.setdefault(names[n], 10**9) == number
    assert len(ids) == len(names)


def test_seen_ids_answer_seen_for_every_id_added() -> None:
    seen = idset.SeenIds()
    names = [f"id-{n}" for n in range(5000)]
    assert [seen.add(name) for name in names] == [False] * len(names)
    assert all(seen.add(name) for name in names)
    assert len(seen) == len(names)


def _pending(count: int) -> list[PendingEvent]:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        pending_from_stored(new_event("custom", {"n": n}).model_copy(update={"timestamp": ts}))
        for n in range(count)
    ]


async def _paged(pages: list[list[PendingEvent]]) -> AsyncIterator[list[PendingEvent]]:
    for page in pages:
        yield page


async def check_a_repeat_across_pages_is_skipped(store: Store) -> None:
    """`create_session_from_pages` keeps `create_session`'s rule: an id already written
    (pages before) is not written again."""
    events = _pending(6)
    again = pending_from_stored(new_event("custom", {"n": 0}), event_id=events[1].id)
    fresh = import_session_of({"id": "paged", "created_at": datetime.now(UTC)})
    written = await store.backend.create_session_from_pages(
        fresh, _paged([events[:3], [events[3], again, events[4]], [events[5]]])
    )
    assert written == 6
    stored = await store.get_events("paged")
    assert [e.id for e in stored] == [p.id for p in events]
    assert [e.sequence_number for e in stored] == [1, 2, 3, 4, 5, 6]


async def check_a_hash_hit_is_looked_up(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ids of one 64-bit hash (about once in 2**64 pairs, so forced here: every id a
    hit) are told apart by what was written: none is taken for a repeat."""
    monkeypatch.setattr(idset.SeenIds, "add", lambda self, event_id: True)
    events = _pending(7)
    fresh = import_session_of({"id": "hits", "created_at": datetime.now(UTC)})
    pages = [events[:3], events[3:5], [events[5], events[0], events[6]]]
    written = await store.backend.create_session_from_pages(fresh, _paged(pages))
    assert written == 7
    assert [e.id for e in await store.get_events("hits")] == [p.id for p in events]


async def check_a_plain_page_after_checked_ones(store: Store) -> None:
    """The ids of an import's pages (`CheckedPage`) are not remembered: a plain page after
    them (no import makes one) has every id looked up, and a repeat is still skipped."""
    events = _pending(5)
    fresh = import_session_of({"id": "mixed", "created_at": datetime.now(UTC)})
    pages = [CheckedPage(events[:2]), CheckedPage(events[2:3]), [events[3], events[0], events[4]]]
    written = await store.backend.create_session_from_pages(fresh, _paged(pages))
    assert written == 5
    assert [e.id for e in await store.get_events("mixed")] == [p.id for p in events]


async def test_a_repeat_across_pages_is_skipped(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        await check_a_repeat_across_pages_is_skipped(store)


async def test_a_plain_page_after_checked_ones(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        await check_a_plain_page_after_checked_ones(store)


async def test_a_hash_hit_is_looked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        await check_a_hash_hit_is_looked_up(store, monkeypatch)


def _export(count: int) -> Iterator[Event]:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(1, count + 1):
        yield new_event("custom", {"n": n}).model_copy(
            update={"sequence_number": n, "session_id": "big", "timestamp": ts}
        )


@pytest.mark.slow
async def test_an_import_holds_a_few_bytes_an_id(tmp_path: Path) -> None:
    # Traced peaks, before: 12 MB with 10,000 events, 53 MB with 200,000 (two dicts of the
    # ids: about 220 bytes an event); now 11 MB and 16 MB (a digest and its number: about
    # 26 bytes an event; the writer keeps nothing of an import's checked pages). The bound
    # is per event: 64 bytes (12 MB over 190,000 events was 66). Traced peaks are exact
    # (no allocator noise), so 90,000 events more tell it as well as 190,000 did (11 MB ->
    # 13.2 MB now, about 20 MB more before) in half the time: tracing slows the import 3.5x.
    grown = []
    sizes = (10_000, 100_000)
    for count in sizes:
        async with agentstore.open(tmp_path / f"data{count}", durability="flush") as store:
            tracemalloc.start()
            try:
                session = {"id": "big", "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
                imported = await store.import_session(session, _export(count))
                grown.append(tracemalloc.get_traced_memory()[1] / 2**20)
            finally:
                tracemalloc.stop()
            assert imported.event_count == count
    assert grown[1] - grown[0] < (sizes[1] - sizes[0]) * 64 / 2**20, grown

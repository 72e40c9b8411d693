"""What a store holds costs the cyclic garbage collector as little as it can.

A full run of Python's cyclic collector pauses every thread (the event loop too) in
proportion to the objects it tracks. So a dropped store frees its memory at once, by
reference counting (an in-memory store of 10,000 sessions left in a reference cycle made
one pause of about 20 ms in a later, unrelated part of the program), and the in-memory
backend keeps an event in parts the collector does not track.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import EventType, Metadata, new_event


@pytest.fixture
def no_cyclic_collector() -> Iterator[None]:
    gc.collect()  # what earlier tests left
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


async def _used_store(path: Path | None = None) -> tuple[weakref.ref[Any], weakref.ref[Any]]:
    store = (
        agentstore.open(path, snapshot_interval=5)
        if path
        else agentstore.open(in_memory=True, snapshot_interval=5)
    )
    async with store:
        session = await store.create_session(labels={"team": "a"})
        for i in range(12):
            await store.append(session.id, new_event(EventType.TOOL_CALLED, {"n": i}))
        await store.get_state(session.id)
        await store.list_sessions(limit=10)
        await store.replay(session.id)
    # The backend too: it holds the caches, and a cycle there would keep them.
    return weakref.ref(store), weakref.ref(store._backend)


@pytest.mark.usefixtures("no_cyclic_collector")
async def test_a_closed_in_memory_store_is_freed_without_the_cyclic_collector() -> None:
    store, backend = await _used_store()
    assert store() is None and backend() is None, "kept alive by a reference cycle"


@pytest.mark.usefixtures("no_cyclic_collector")
async def test_a_closed_file_store_is_freed_without_the_cyclic_collector(tmp_path: Path) -> None:
    store, backend = await _used_store(tmp_path)
    assert store() is None, "the store is kept alive by a reference cycle"
    assert backend() is None, "its backend is kept alive by a reference cycle"


def _tracked_after_full_collections() -> int:
    gc.collect()
    gc.collect()  # a dict holding a tuple is untracked one full collection after the tuple
    return len(gc.get_objects())


async def test_in_memory_events_add_no_objects_for_the_collector_to_walk() -> None:
    async with agentstore.open(in_memory=True, snapshot_interval=0) as store:
        session = await store.create_session()
        meta = Metadata(model="m", tokens_in=3, cost_usd=0.5, extra={"k": "v"})
        await store.append(session.id, new_event(EventType.LLM_RESPONSE, {"a": [1]}, metadata=meta))
        before = _tracked_after_full_collections()
        for i in range(1000):
            payload = {"text": "hi", "n": i, "nested": {"list": [i]}}
            await store.append(
                session.id, new_event(EventType.LLM_RESPONSE, payload, metadata=meta)
            )
        grown = _tracked_after_full_collections() - before
        assert grown < 100, f"{grown} more tracked objects for 1,000 events"
        # Kept apart, the events still come back whole, each with metadata of its own.
        events = await store.replay(session.id)
        assert events[-1].metadata == meta and events[-1].payload["nested"] == {"list": [999]}
        events[-1].metadata.extra["k"] = "changed"  # type: ignore[index]
        assert (await store.replay(session.id, from_seq=1001))[0].metadata == meta


async def test_in_memory_sessions_are_one_object_each_for_the_collector() -> None:
    async with agentstore.open(in_memory=True) as store:
        await store.create_session()
        before = _tracked_after_full_collections()
        ids = [
            (await store.create_session(labels={"env": "dev", "n": str(i)}, name=f"s{i}")).id
            for i in range(1000)
        ]
        grown = _tracked_after_full_collections() - before
        assert grown < 1100, f"{grown} more tracked objects for 1,000 sessions"
        # Kept as their JSON, they come back whole, each a Session of its own.
        got = await store.get_session(ids[7])
        assert (got.name, got.labels, got.event_count) == ("s7", {"env": "dev", "n": "7"}, 0)
        got.labels["env"] = "changed"
        assert (await store.get_session(ids[7])).labels["env"] == "dev"
        await store.update_session(ids[7], labels={"env": "prod"})
        page = await store.list_sessions(labels={"env": "prod"})
        assert [s.id for s in page] == [ids[7]]


async def test_metadata_kept_apart_comes_back_whole_and_unshared() -> None:
    # Unknown keys (kept by Metadata) and which fields were set survive the parts.
    meta = Metadata.model_validate({"model": "m", "custom": {"a": [1]}, "extra": {"k": "v"}})
    async with agentstore.open(in_memory=True) as store:
        session = await store.create_session()
        await store.append(session.id, new_event(EventType.LLM_RESPONSE, {}, metadata=meta))
        first = (await store.replay(session.id))[0].metadata
        assert first == meta and first.model_fields_set == meta.model_fields_set
        assert first.__pydantic_extra__ == {"custom": {"a": [1]}}
        first.__pydantic_extra__["custom"]["a"].append(2)
        assert (await store.replay(session.id))[0].metadata == meta

"""A dropped store frees its memory at once, by reference counting.

What a closed store leaves in reference cycles waits for a full run of Python's cyclic
collector, which pauses every thread (the event loop too) in proportion to the whole heap:
an in-memory store of 10,000 sessions left behind made one such pause of about 20 ms in a
later, unrelated part of the program.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

import agentstore
from agentstore import EventType, new_event


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


async def _used_store() -> weakref.ref[agentstore.Store]:
    store = agentstore.open(in_memory=True, snapshot_interval=5)
    async with store:
        session = await store.create_session(labels={"team": "a"})
        for i in range(12):
            await store.append(session.id, new_event(EventType.TOOL_CALLED, {"n": i}))
        await store.get_state(session.id)
        await store.list_sessions(limit=10)
        await store.replay(session.id)
    return weakref.ref(store)


@pytest.mark.usefixtures("no_cyclic_collector")
async def test_a_closed_in_memory_store_is_freed_without_the_cyclic_collector() -> None:
    ref = await _used_store()
    assert ref() is None, "the store is kept alive by a reference cycle"

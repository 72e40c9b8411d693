"""A long read keeps full collections out of its turns (`agentstore._gc`).

A full collection walks every object of the process, the events a read has built so far
included: one run of it is a stall of the event loop no turn can split. Reads that take
turns defer them; the collector's setting is back as it was afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import EventType, new_event
from agentstore._gc import full_collections_deferred, gc_paused

EVENTS = 4000


class FullCollections:
    """Counts the collections of the oldest generation while it is installed."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            self.count += 1

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def test_the_threshold_comes_back_after_nested_deferrals_and_errors(
    eager_collector: tuple[int, int, int],
) -> None:
    with full_collections_deferred():
        deferred = gc.get_threshold()
        assert deferred[:2] == eager_collector[:2]
        assert deferred[2] > 1_000_000
        with full_collections_deferred():
            pass
        assert gc.get_threshold() == deferred  # the outer deferral still holds
    assert gc.get_threshold() == eager_collector
    with pytest.raises(RuntimeError), full_collections_deferred():
        raise RuntimeError("boom")
    assert gc.get_threshold() == eager_collector


def test_a_threshold_the_program_sets_meanwhile_is_kept(
    eager_collector: tuple[int, int, int],
) -> None:
    with full_collections_deferred():
        gc.set_threshold(500, 5, 7)
    assert gc.get_threshold() == (500, 5, 7)


def test_the_eager_collector_does_walk_the_heap_outside_a_read(
    eager_collector: tuple[int, int, int],
) -> None:
    # The control for the tests below: these thresholds do bring full collections.
    with FullCollections() as full:
        kept = [{"n": [i]} for i in range(5000)]
    assert full.count > 0
    del kept


async def _filled(store: agentstore.Store) -> str:
    sid = (await store.create_session()).id
    await store.append_many(
        sid, [new_event(EventType.TOOL_CALLED, {"step": [i]}) for i in range(EVENTS)]
    )
    return sid


async def _ticker(ticks: list[int]) -> None:
    while True:
        await asyncio.sleep(0)
        ticks[0] += 1


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_no_full_collection_runs_inside_a_long_read(
    kind: str, tmp_path: Path, eager_collector: tuple[int, int, int]
) -> None:
    # No cache and no snapshots: `get_state` folds every event, in pages.
    opened = (
        agentstore.open(in_memory=True, cache_size=0, snapshot_interval=0)
        if kind == "memory"
        else agentstore.open(tmp_path, cache_size=0, snapshot_interval=0)
    )
    async with opened as store:
        sid = await _filled(store)
        ticks = [0]
        ticker = asyncio.create_task(_ticker(ticks))
        try:
            with FullCollections() as full:
                events = await store.replay(sid)
                state = await store.get_state(sid)
            assert full.count == 0
            assert len(events) == EVENTS and state.event_count == EVENTS
            assert ticks[0] > 0  # the reads did take turns: other tasks ran meanwhile
            assert gc.get_threshold() == eager_collector
        finally:
            ticker.cancel()


async def test_a_read_cancelled_between_turns_puts_the_threshold_back(
    eager_collector: tuple[int, int, int],
) -> None:
    # No snapshots: their writes fold in the background, with a deferral of their own.
    async with agentstore.open(in_memory=True, snapshot_interval=0) as store:
        sid = await _filled(store)
        read = asyncio.create_task(store.replay(sid))
        await asyncio.sleep(0)  # the read runs until its first turn of the loop
        assert gc.get_threshold() != eager_collector  # inside its deferral
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        assert gc.get_threshold() == eager_collector


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_during_a_deferral_gets_the_threshold_back(
    eager_collector: tuple[int, int, int],
) -> None:
    with full_collections_deferred():
        pid = os.fork()
        if pid == 0:  # the child: the deferral that was on in its parent never ends here
            os._exit(0 if gc.get_threshold() == eager_collector else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_during_a_pause_gets_the_collector_back(collector_on: None) -> None:
    with gc_paused():
        pid = os.fork()
        if pid == 0:  # the child: the pause that was on in its parent never ends here
            os._exit(0 if gc.isenabled() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

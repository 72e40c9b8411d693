"""Review 7: full collections deferred by reads that overlap without end
(`agentstore._gc.full_collections_deferred`)."""

from __future__ import annotations

import gc
from contextlib import ExitStack
from typing import Any

from agentstore._gc import full_collections_deferred


def test_reads_that_always_overlap_still_let_a_full_collection_run(
    eager_collector: tuple[int, int, int],
) -> None:
    # A server whose clients keep reading: each read starts before the one before it has
    # ended, so at no moment is the process outside a deferral. Full collections are put
    # off, but not for ever: the cyclic garbage of a long-running process must be freed.
    full = 0

    def count(phase: str, info: dict[str, Any]) -> None:
        nonlocal full
        if phase == "start" and info["generation"] == 2:
            full += 1

    kept: list[Any] = []
    gc.callbacks.append(count)
    try:
        with ExitStack() as reads:
            reads.enter_context(full_collections_deferred())
            for _ in range(100):
                previous = reads.pop_all()
                reads.enter_context(full_collections_deferred())  # the next read starts
                kept.append([{"event": [i]} for i in range(1000)])  # the reads' events
                previous.close()  # then the one before it ends
            during = full
    finally:
        gc.callbacks.remove(count)
    assert gc.get_threshold() == eager_collector
    assert during > 0, "the oldest generation was never collected while reads overlapped"


def test_a_setting_saved_during_a_read_and_put_back_after_it_heals_at_the_next_read(
    eager_collector: tuple[int, int, int],
) -> None:
    # A program (or a library, or another thread) saves the collector's setting while a
    # read defers full collections, and puts it back once the read has ended: the setting
    # it puts back is the deferral's. The next read must not take that for the program's.
    with full_collections_deferred():
        saved = gc.get_threshold()
    gc.set_threshold(*saved)
    with full_collections_deferred():
        pass
    assert gc.get_threshold() == eager_collector

"""Review 15 (retries by id): a batch torn across blocks is retried whole, once.

A writer killed mid-`write` leaves part of its batch: whole lines (each carrying the
batch's last sequence number, `batch_end`) and maybe a cut one. Such a tail is not
committed: the next writer moves it aside and the retried batch is written anew. Here
the torn tail is made by hand from the lines of the real batch (1,500 events, so it
spans two of the id index's blocks): cut after 1,200 whole lines, and again in the
middle of line 1,201; in a fresh store, and in one that had the log open (its ids read)
before the tear. The retry answers the whole batch at the numbers after the committed
events, stores each id once and the directory verifies clean; a second retry answers
the same, writing nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.events import Event


def _batch(n: int) -> list[Event]:
    return [new_event("custom", {"i": i}).model_copy(update={"id": f"b-{i}"}) for i in range(n)]


@pytest.mark.parametrize("cut", ["after-a-line", "mid-line"])
@pytest.mark.parametrize("open_before", [False, True], ids=["fresh", "open-before"])
async def test_a_batch_torn_across_blocks_is_retried_whole(
    tmp_path: Path, cut: str, open_before: bool
) -> None:
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        await store.create_session(session_id="s")
        for k in range(0, 700, 100):  # the batch starts in the first block, ends in the next
            await store.append_many(
                "s", [new_event("custom", {"pre": i}) for i in range(k, k + 100)]
            )
    log = tmp_path / "events" / "s.jsonl"
    committed = log.read_bytes()
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        first = await store.append_many("s", _batch(1500))
    assert [e.sequence_number for e in first] == list(range(701, 2201))
    whole = log.read_bytes()
    lines = whole[len(committed) :].splitlines(keepends=True)
    torn = b"".join(lines[:1200])
    if cut == "mid-line":
        torn += lines[1200][: len(lines[1200]) // 2]
    log.write_bytes(committed)
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        if open_before:  # this process has the log open (its ids read) before the tear
            last = (await store.get_events("s"))[-1]
            assert await store.append_many("s", [last]) == [last]  # a retry: nothing written
            assert log.read_bytes() == committed
        with log.open("ab") as f:  # what a writer killed mid-write leaves
            f.write(torn)
        again = await store.append_many("s", _batch(1500))
        assert [(e.id, e.sequence_number) for e in again] == [
            (e.id, e.sequence_number) for e in first
        ]
        assert [e.payload for e in again] == [e.payload for e in first]
        size = log.stat().st_size
        repeat = await store.append_many("s", _batch(1500))
        assert repeat == again
        assert log.stat().st_size == size  # nothing written twice
        events = await store.get_events("s")
        assert len(events) == 2200
        assert len({e.id for e in events}) == 2200
        assert (await store.verify()).ok

"""Review 11: the backends give a session's batch marks as runs (`MarkRuns`), not a dict.

`Backend.batch_marks` was a dict of an entry an event of a batch: `agentstore copy` of a
200,000-event session built one of 199,800 entries (about 22 MB, a few GB for tens of
millions of events) before compacting it. The file, PostgreSQL and remote backends build
the runs as they read them; these tests hold them to the marks they stand for.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.marks import MarkRuns, add_marks
from agentstore.server import grpc_storage_reads
from tests.batches_helpers import append_mixed
from tests.server.grpc_helpers import running_door


def test_runs_read_as_the_marks_they_hold() -> None:
    runs = MarkRuns()
    runs.add(1, 3)
    runs.add(2, 3)
    runs.add_run(5, 9, 9)  # events 5..8, marked 9
    runs.add_run(9, 9, 12)  # no event: nothing
    runs.add(10, 12)
    expected = {1: 3, 2: 3, 5: 9, 6: 9, 7: 9, 8: 9, 10: 12}
    assert runs == expected
    assert dict(runs) == expected and len(runs) == 7 and runs.last() == 10
    assert list(runs.pairs()) == sorted(expected.items())
    assert [runs.get(seq) for seq in range(12)] == [expected.get(seq) for seq in range(12)]
    assert runs.get(4, 0) == 0 and runs.get("4") is None  # type: ignore[call-overload]
    assert MarkRuns.of(expected) == expected and MarkRuns.of(runs) is runs
    with pytest.raises(ValueError, match="after event 10"):
        runs.add(4, 5)


async def test_a_line_longer_than_the_scans_chunk(tmp_path: Path) -> None:
    # The scan reads a MiB at a time from the first line not counted: a line longer than
    # that is read whole, not counted twice or skipped.
    async with agentstore.open(tmp_path / "data") as store:
        sid = (await store.create_session()).id
        big = {"text": "x" * (3 * 1024 * 1024)}
        await store.append_many(sid, [new_event("custom", p) for p in ({}, big, {})])
        await store.append_many(sid, [new_event("custom", p) for p in (big, {})])
        marks = await store.backend.batch_marks(sid)
        assert isinstance(marks, MarkRuns)
        assert marks == {1: 3, 2: 3, 4: 5}


async def test_a_mark_past_64_bits_is_given_as_it_is(tmp_path: Path) -> None:
    # A damaged log's: kept (a dict), for the copy to refuse it with its own message.
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(2)])
    log = data / "events" / f"{sid}.jsonl"
    # Without its checksum (a line may have none): the mark alone changed.
    huge = b'"batch_end":%d}' % 2**64
    log.write_bytes(re.sub(rb'"batch_end":2,"crc32c":"[0-9a-f]{8}"\}', huge, log.read_bytes()))
    async with agentstore.open(data, read_only=True) as store:
        assert await store.backend.batch_marks(sid) == {1: 2**64}


async def test_a_server_sends_runs_a_page_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grpc_storage_reads, "MARKS_PAGE", 2)  # the marks span several pages
    async with (
        await agentstore.open(tmp_path / "data", pricing=False) as served,
        running_door(served) as door,
    ):
        sid = (await served.create_session()).id
        await append_mixed(served, sid, 0)
        await served.append_many(sid, [new_event("custom", {"n": n}) for n in range(4)])
        async with agentstore.open(f"grpc://{door.target}") as remote:
            marks = await remote.backend.batch_marks(sid)
    assert isinstance(marks, MarkRuns)
    assert marks == {1: 3, 2: 3, 5: 6, 8: 11, 9: 11, 10: 11}


def test_marks_paged_out_of_order_are_kept_whole_as_a_dict() -> None:
    # A server's pages come in order (runs); one of another kind may not: every mark of
    # every page is still there, as a dict.
    marks = add_marks(MarkRuns(), [1, 2, 4], [3, 3, 5])
    assert isinstance(marks, MarkRuns) and dict(marks) == {1: 3, 2: 3, 4: 5}
    marks = add_marks(marks, [7, 3, 8], [9, 3, 9])
    assert not isinstance(marks, MarkRuns)
    assert marks == {1: 3, 2: 3, 3: 3, 4: 5, 7: 9, 8: 9}
    assert add_marks(marks, [0], [3]) == {**marks, 0: 3}

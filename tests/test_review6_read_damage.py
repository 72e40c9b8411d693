"""Review: a damaged line met by a read across many hops is reported, and nothing leaks.

With tiny hops and chunks, the damaged line lands at every kind of boundary (first or last
line of a hop, of a chunk, of a page). Each read whose range holds it raises
`CorruptLogError` naming that line, with or without a type filter; reads whose range
does not hold it return their events; the descriptors a read opened are closed and the
collector is on again after each error.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

import agentstore
from agentstore import CorruptLogError, new_event
from agentstore.backends.file import reading

N = 1500


@pytest.fixture
def tiny_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "HOP_BYTES", 6 * 1024)
    monkeypatch.setattr("agentstore.backends.file.lines.READ_CHUNK", 2 * 1024 + 1)


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("damaged", [1, 2, 37, 255, 256, 257, 512, 1023, 1024, 1025, N - 2])
async def test_a_damaged_line_is_reported_by_every_read_that_covers_it(
    tmp_path: Path, tiny_hops: None, collector_on: None, damaged: int
) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        kinds = ("tool_called", "tool_result", "llm_response")
        await store.append_many(
            sid, [new_event(kinds[i % 3], {"i": i, "pad": "z" * (i % 90)}) for i in range(N)]
        )
    log = tmp_path / "events" / f"{sid}.jsonl"
    lines = log.read_bytes().split(b"\n")
    at = lines[damaged - 1].index(b'"i":') + 4
    line = bytearray(lines[damaged - 1])
    line[at] = ord("9") if line[at] != ord("9") else ord("8")  # still JSON, wrong checksum
    lines[damaged - 1] = bytes(line)
    log.write_bytes(b"\n".join(lines))
    damaged_type = kinds[(damaged - 1) % 3]
    other_types = [k for k in kinds if k != damaged_type]

    async with agentstore.open(tmp_path) as store:
        # Open the log first (a read of the last line; opening checks the last two): its
        # descriptor stays open.
        await store.replay(sid, from_seq=N, limit=1)
        before = _open_descriptors()
        covering = [
            {},
            {"from_seq": damaged},
            {"to_seq": damaged},
            {"from_seq": max(damaged - 300, 1), "to_seq": damaged + 300},
            {"types": other_types},  # skipped by type, yet never skipped as damage
            {"types": [damaged_type], "from_seq": damaged},
        ]
        for flt in covering:
            with pytest.raises(CorruptLogError) as caught:
                await store.replay(sid, **flt)  # type: ignore[arg-type]
            assert caught.value.line == damaged, flt
            assert gc.isenabled(), flt
            assert _open_descriptors() == before, flt
        if damaged > 1:
            got = await store.replay(sid, to_seq=damaged - 1)
            assert [e.sequence_number for e in got] == list(range(1, damaged))
        if damaged < N:
            got = await store.replay(sid, from_seq=damaged + 1)
            assert [e.sequence_number for e in got] == list(range(damaged + 1, N + 1))
        assert _open_descriptors() == before
        assert gc.isenabled()

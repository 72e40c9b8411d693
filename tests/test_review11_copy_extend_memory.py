"""Review 11: what `agentstore copy` holds of a session it extends (SRC grew since a copy).

A new session is written a page at a time, its ids held as digests (or not at all: see
tests/test_review11_copy_memory.py). A session that DST has the beginning of gets the rest
by appends, batch by batch as SRC's were; and the file backend's append kept every id of
the log in a dict (`LogView.ids`, built on the first append, grown by each: an append's
rule of skipping an id already written), so the copy held every id it appended, about
170 bytes each (measured here: 10,000 events 66 MB, 200,000 events 99 MB). So did any
process appending to a long session. Now that index is 64-bit entries (`idindex.py`, about
11 bytes an id), a hit looked up in the log: 190,000 more events cost about 2 MB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import agentstore_cli_peak


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
async def test_a_copy_that_extends_a_session_holds_a_page(tmp_path: Path) -> None:
    peaks = []
    for count in (10_000, 200_000):
        src, dst = tmp_path / f"src{count}", tmp_path / f"dst{count}"
        async with agentstore.open(src, durability="flush") as store:
            sid = (await store.create_session()).id
            await store.append_many(sid, [new_event("custom", {"i": i}) for i in range(1000)])
        first, _ = agentstore_cli_peak("copy", src, dst)
        assert first.returncode == 0, first.stderr
        async with agentstore.open(src, durability="flush") as store:
            for k in range(1, count // 1000):
                page = [{"k": k, "i": i} for i in range(1000)]
                await store.append_many(sid, [new_event("custom", p) for p in page])
        extended, peak = agentstore_cli_peak("copy", src, dst)
        assert extended.returncode == 0, extended.stderr
        assert "extended 1" in extended.stdout
        peaks.append(peak)
    # 190,000 events more, appended a batch of 1,000 at a time: the peak should not grow.
    assert peaks[1] - peaks[0] < 12, peaks

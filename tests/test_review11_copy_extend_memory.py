"""Review 11: what `agentstore copy` holds of a session it extends (SRC grew since a copy).

A new session is written a page at a time, its ids held as digests (or not at all: see
tests/test_review11_copy_memory.py). A session that DST has the beginning of gets the rest
by appends, batch by batch as SRC's were; and the file backend's append keeps every id of
the log in a dict (`LogView.ids`, built on the first append, grown by each: an append's
rule of skipping an id already written), so the copy holds every id it appends, about
170 bytes each: the id string (85, decoded from SRC's line), its number (32), the dict's
slot (measured here: 10,000 events 66 MB, 200,000 events 99 MB; tracemalloc at the end of
the 199,000 appends: 30 MB of them). So does any process appending to a long session.
Left: that dict as hashes, a hit looked up in the log (as `SessionBuilder` does), without
slowing an append (the hot path: `python -m bench.micro`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import agentstore_cli_peak


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
@pytest.mark.xfail(
    strict=True,
    reason="the file backend's append keeps every id of the log in a dict (LogView.ids): "
    "a copy that extends a session holds every id it appends",
)
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

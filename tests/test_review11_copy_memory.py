"""Review 11: what `agentstore copy` still holds of a session it copies, beyond a page.

The events are read and written a page at a time, but the import kept every id it had seen
(to refuse a repeat, naming the event it repeats: `import_pages`), the new log's writer kept
them again (`SessionBuilder.ids`, PostgreSQL's `Importer`: an append's rule of skipping a
repeat), and SRC's batch marks came as a dict of an entry an event before they were made
runs. Measured here (file -> file, one session): 10,000 events 62 MB, 200,000 events 116
MB. Now the import keeps a 96-bit digest and a number an id (`IdNumbers`, about 18 bytes),
the writer nothing for an import's checked pages (`CheckedPage`; a hash an id otherwise,
its hits looked up in what it wrote), and the backends read their marks as runs
(`MarkRuns`): 61 MB and 67.5 MB."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import agentstore_cli_peak


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
async def test_a_copy_holds_a_page_not_the_sessions_ids(tmp_path: Path) -> None:
    peaks = []
    for count in (10_000, 200_000):
        src = tmp_path / f"src{count}"
        async with agentstore.open(src, durability="flush") as store:
            sid = (await store.create_session()).id
            for k in range(count // 1000):
                page = [{"k": k, "i": i} for i in range(1000)]
                await store.append_many(sid, [new_event("custom", p) for p in page])
        copied, peak = agentstore_cli_peak("copy", src, tmp_path / f"dst{count}")
        assert copied.returncode == 0, copied.stderr
        peaks.append(peak)
    # 190,000 events more: the pages are the same size, so the peak should be too.
    assert peaks[1] - peaks[0] < 12, peaks

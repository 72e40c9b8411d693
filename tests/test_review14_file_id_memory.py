"""Review 14: the file backend's id index holds about 11 bytes an id (docs/backends.md).

Measured with tracemalloc on 200,000 UUID ids, both ways an index is made: built from a
log's entries at once (`scan.build_index`: its `array` of entries, then the buckets) and
grown by appends (`IdIndex.admit`, batches of 100). A dict of the id strings, as before
the index, held about 160 bytes an id.
"""

from __future__ import annotations

import tracemalloc
from array import array
from collections.abc import Callable

from agentstore.backends.file.idindex import IdIndex, entry_of
from agentstore.event_ids import new_event_id

_N = 200_000


def _measured(make: Callable[[], IdIndex]) -> tuple[float, float, IdIndex]:
    tracemalloc.start()
    try:
        index = make()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return now / _N, peak / _N, index


def test_an_index_of_200000_ids_holds_about_11_bytes_an_id() -> None:
    ids = [new_event_id() for _ in range(_N)]

    def grown() -> IdIndex:
        index = IdIndex()
        for k in range(0, _N, 100):
            index.admit(ids[k : k + 100], k)
        return index

    def built() -> IdIndex:
        return IdIndex(array("Q", (entry_of(i, seq) for seq, i in enumerate(ids, 1))))

    for make, most_held, most_peak in ((grown, 12, 13), (built, 12, 21)):
        held, peak, index = _measured(make)
        assert len(index) == _N
        assert held < most_held, f"{make.__name__}: {held:.1f} bytes an id"
        # Built: the entries' array (8 bytes an id) and the buckets, for a moment.
        assert peak < most_peak, f"{make.__name__}: {peak:.1f} bytes an id at the peak"
        assert index.hits(ids[::1000]) == list(range(200))

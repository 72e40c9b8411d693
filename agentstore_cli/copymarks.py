"""A session's batch marks in the compact form `agentstore copy` holds them in.

`Backend.batch_marks` gives an entry per event of a batch but its last: a copy of a session
of 400,000 events appended 100 at a time held 396,000 of them (about 40 MB) from the first
page it wrote to the last. Held as runs (consecutive events with the same mark: a batch),
they are three numbers a batch.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Mapping

__all__ = ["compact_marks"]


class _Runs(Mapping[int, int]):
    """Batch marks as runs: events `starts[i]..stops[i] - 1` are marked `ends[i]`."""

    def __init__(self, marks: Mapping[int, int]) -> None:
        starts, stops, ends = array("q"), array("q"), array("q")
        previous = 0
        ordered = True
        for seq in marks:  # the backends give them in order; a pass checks it
            if type(seq) is not int or seq <= previous:
                ordered = False
                break
            previous = seq
        for seq, end in marks.items() if ordered else sorted(marks.items()):
            if stops and seq == stops[-1] and end == ends[-1]:
                stops[-1] = seq + 1
            else:
                starts.append(seq)
                stops.append(seq + 1)
                ends.append(end)
        self._starts, self._stops, self._ends = starts, stops, ends
        self._len = len(marks)

    def __getitem__(self, seq: int) -> int:
        if type(seq) is int:
            i = bisect_right(self._starts, seq) - 1
            if i >= 0 and seq < self._stops[i]:
                return self._ends[i]
        raise KeyError(seq)

    def __iter__(self) -> Iterator[int]:
        for start, stop in zip(self._starts, self._stops, strict=True):
            yield from range(start, stop)

    def __len__(self) -> int:
        return self._len

    def last(self) -> int:
        """The last marked event (0: none)."""
        return self._stops[-1] - 1 if self._stops else 0


def compact_marks(marks: dict[int, int] | None) -> tuple[Mapping[int, int] | None, int]:
    """`marks` in their compact form, and the last marked event (0: none).

    Marks that do not fit (not integers of 64 bits: a damaged log's) stay as they are, for
    the import to refuse with their own message.
    """
    if marks is None:
        return None, 0
    try:
        runs = _Runs(marks)
    except (OverflowError, TypeError):
        return marks, max((seq for seq in marks if type(seq) is int), default=0)
    return runs, runs.last()

"""A session's batch marks as runs: three numbers a batch, not an entry an event.

`Backend.batch_marks` tells, for every event of an `append_many` batch but its last, the
last event of its batch. As a dict that is an entry an event (about 110 bytes): a copy of
a session of tens of millions of events built GBs of them before writing anything. The
backends that keep marks build them as runs (consecutive events with the same mark: a
batch) instead, read as the same mapping.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar, overload

__all__ = ["MarkRuns", "add_marks"]

_T = TypeVar("_T")


class MarkRuns(Mapping[int, int]):
    """Batch marks as runs: events `starts[i]..stops[i] - 1` are marked `ends[i]`.

    Built in order of sequence numbers with `add` (a backend reading its marks), or from
    any mapping of 64-bit integers (`of`). Reads as the `{sequence number: mark}` it holds.
    """

    __slots__ = ("_ends", "_len", "_starts", "_stops")

    def __init__(self) -> None:
        self._starts, self._stops, self._ends = array("q"), array("q"), array("q")
        self._len = 0

    @classmethod
    def of(cls, marks: Mapping[int, int]) -> MarkRuns:
        """The runs of `marks`; raise `TypeError` or `OverflowError` for a key or mark that
        is not an integer of 64 bits (a damaged log's)."""
        if isinstance(marks, MarkRuns):
            return marks
        runs = cls()
        previous = 0
        ordered = True
        for seq in marks:  # the backends give them in order; a pass checks it
            if type(seq) is not int or seq <= previous:
                ordered = False
                break
            previous = seq
        for seq, end in marks.items() if ordered else sorted(marks.items()):
            if type(seq) is not int or type(end) is not int:
                raise TypeError(f"batch mark {seq!r}: {end!r}")
            runs.add(seq, end)
        return runs

    def add(self, seq: int, end: int) -> None:
        """Mark event `seq` with `end`; `seq` is above every event marked so far."""
        stops, ends = self._stops, self._ends
        if stops and seq == stops[-1] and end == ends[-1]:
            stops[-1] = seq + 1
        else:
            if stops and seq < stops[-1]:
                raise ValueError(f"batch mark of event {seq} after event {stops[-1] - 1}'s")
            self._starts.append(seq)
            stops.append(seq + 1)
            ends.append(end)
        self._len += 1

    def add_run(self, start: int, stop: int, end: int) -> None:
        """Mark events `start..stop - 1` with `end`; `start` is above every event marked so
        far (a run that continues the last one, same mark, extends it)."""
        if start < stop:
            self.add(start, end)
            self._stops[-1] = stop
            self._len += stop - start - 1

    def __getitem__(self, seq: int) -> int:
        if type(seq) is int:
            i = bisect_right(self._starts, seq) - 1
            if i >= 0 and seq < self._stops[i]:
                return self._ends[i]
        raise KeyError(seq)

    @overload
    def get(self, seq: int, /) -> int | None: ...
    @overload
    def get(self, seq: int, /, default: int | _T) -> int | _T: ...
    def get(self, seq: int, /, default: object = None) -> object:
        """The mark of event `seq`, or `default` (as `Mapping.get`, without its KeyError
        raised and caught for each event not marked: an import asks of every event)."""
        if type(seq) is int:
            i = bisect_right(self._starts, seq) - 1
            if i >= 0 and seq < self._stops[i]:
                return self._ends[i]
        return default

    def __iter__(self) -> Iterator[int]:
        for start, stop in zip(self._starts, self._stops, strict=True):
            yield from range(start, stop)

    def __len__(self) -> int:
        return self._len

    def pairs(self) -> Iterator[tuple[int, int]]:
        """`(sequence number, mark)` of each marked event, in order (`items()`, without a
        look-up each)."""
        for start, stop, end in zip(self._starts, self._stops, self._ends, strict=True):
            for seq in range(start, stop):
                yield seq, end

    def __repr__(self) -> str:
        return f"MarkRuns({dict(self)!r})" if self._len <= 20 else f"<MarkRuns of {self._len}>"

    def last(self) -> int:
        """The last marked event (0: none)."""
        return self._stops[-1] - 1 if self._stops else 0


def add_marks(
    marks: MarkRuns | dict[int, int], seqs: Sequence[int], ends: Sequence[int]
) -> MarkRuns | dict[int, int]:
    """Add the marks `ends[i]` of events `seqs[i]` to `marks`, and return them: as runs while
    they come in order of sequence numbers (as a server sends its pages), from the first
    that does not (a server of another kind) all of them as a dict."""
    if isinstance(marks, MarkRuns):
        try:
            for seq, end in zip(seqs, ends, strict=True):
                marks.add(seq, end)
            return marks
        except ValueError:  # out of order
            marks = dict(marks)
    marks.update(zip(seqs, ends, strict=True))
    return marks

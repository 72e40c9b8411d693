"""A session's batch marks in the compact form `agentstore copy` holds them in.

`Backend.batch_marks` gives an entry per event of a batch but its last: a copy of a session
of 400,000 events appended 100 at a time held 396,000 of them (about 40 MB) from the first
page it wrote to the last. Held as runs (`MarkRuns`: consecutive events with the same mark,
a batch), they are three numbers a batch; the file and PostgreSQL backends give them so.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentstore.backends.marks import MarkRuns

__all__ = ["compact_marks"]


def compact_marks(marks: Mapping[int, int] | None) -> tuple[Mapping[int, int] | None, int]:
    """`marks` in their compact form, and the last marked event (0: none).

    Marks that do not fit (not integers of 64 bits: a damaged log's) stay as they are, for
    the import to refuse with their own message.
    """
    if marks is None:
        return None, 0
    try:
        runs = MarkRuns.of(marks)
    except (OverflowError, TypeError):
        return marks, max((seq for seq in marks if type(seq) is int), default=0)
    return runs, runs.last()

"""A retried batch's stored events, looked up in its log: the lines holding ids the id
index points at, and the stored events answered for them, each found in one pass over
the lines concerned (not a read from a checkpoint per id or per event).
"""

from __future__ import annotations

from collections.abc import Iterable

from agentstore.backends.base import EventFilter
from agentstore.backends.file.idindex import BLOCK
from agentstore.backends.file.lines import read_lines
from agentstore.backends.file.log import LogView
from agentstore.backends.file.scan import decode_at, line_id, scan_start
from agentstore.events import Event

__all__ = ["find_written", "read_stored"]


def find_written(
    fd: int, view: LogView, want: set[str], first: int, last: int, found: dict[str, int]
) -> None:
    """Put in `found` the ids of `want` on lines `first..last` of the log (taking them
    out of `want`): one pass over those lines, however many ids are wanted."""
    seq, offset = scan_start(fd, EventFilter(from_seq=first), view.checkpoints)
    for _, lines in read_lines(fd, offset, view.size):
        for line in lines:
            if seq > last or not want:
                return
            if seq >= first:
                event_id = line_id(line, view.path, view.session_id, seq)
                if event_id in want:
                    want.discard(event_id)
                    found[event_id] = seq
            seq += 1


def read_stored(fd: int, view: LogView, seqs: Iterable[int]) -> dict[int, Event]:
    """The stored events numbered `seqs` (a retry's), in one pass over their lines.

    Only those lines are decoded; the scan goes on from one to the next when it is
    less than a block (`BLOCK` lines) ahead, else starts again at the checkpoint
    before it. A read of its own for each event (from its checkpoint, up to `BLOCK`
    lines before it) answered a retried batch of 5,000 events in 6 s.
    """
    wanted = sorted(set(seqs))
    found: dict[int, Event] = {}
    at = 0
    while at < len(wanted):
        target = wanted[at]
        seq, offset = scan_start(fd, EventFilter(from_seq=target), view.checkpoints)
        for _, lines in read_lines(fd, offset, view.size):
            for line in lines:
                if seq == target:
                    found[seq] = decode_at(line, view.path, seq)
                    at += 1
                    if at == len(wanted) or wanted[at] - seq > BLOCK:
                        break  # the next one from its own checkpoint
                    target = wanted[at]
                seq += 1
            else:
                continue
            break
        else:
            return found  # the log ends before `target`: missing (the caller says so)
    return found

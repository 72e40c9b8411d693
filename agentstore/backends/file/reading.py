"""Reading events: I/O on a worker thread, decoding on the event loop in short turns.

A read of 10,000 events decodes for about 20 ms. On a worker thread that work holds the
GIL, and the event loop waits up to the interpreter's switch interval (5 ms) each time it
asks for it back: every other task stalls. So the worker opens the log, reads its first
chunk (1 MiB) and decodes it for at most `WORKER_DECODE` (half a millisecond: the tail
after a snapshot, all of a small read, in one hop); the loop decodes the rest a page at
a time, giving other tasks a turn every millisecond (`Turns`), and the later chunks are
read on the worker (4 MiB a hop, GIL released in the system call).

`read_view` is the same read from one thread, for callers already on a worker thread;
`batch_marks` reads only the lines' batch marks (for a copy, see `Backend.batch_marks`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from time import perf_counter
from typing import TypeVar

import anyio.to_thread

from agentstore._gc import full_collections_deferred
from agentstore._turns import ThreadTurns, Turns
from agentstore.backends.base import EventFilter
from agentstore.backends.file import atomic
from agentstore.backends.file.lines import read_lines
from agentstore.backends.file.log import Logs, LogView
from agentstore.backends.file.scan import Scan, scan_events, scan_start
from agentstore.backends.marks import MarkRuns
from agentstore.errors import StorageError
from agentstore.events import Event

_Marks = TypeVar("_Marks", MarkRuns, dict[int, int])

__all__ = ["LOOP_PAGE", "batch_marks", "read_events", "read_view"]

WORKER_DECODE = 0.0005
"""Seconds the worker spends on a read (opening, the first chunk's lines, decoding them)
before it hands the rest of the chunk to the loop, at least a page of it decoded.

Short: while the worker decodes it holds the GIL, and a loop woken meanwhile (a timer, a
socket) waits for it. At 2 ms, one cold fold's page read in two (10,000 events, pages of
1,000) left the heartbeat of `make bench` waiting over 5 ms; at 0.5 ms one read in 150
did, and a cold `get_state` of 1,000 events got 1.06-1.26x faster (A/B, one run; the
timeline and replay unchanged)."""

LOOP_PAGE = 128
"""Lines decoded on the loop between two looks at the clock (a quarter of a millisecond on
an idle benchmark machine, a millisecond when its neighbours are busy)."""

HOP_BYTES = 4 * 1024 * 1024
"""Bytes of log read per thread hop after the first, which reads one chunk (1 MiB): a
read is often a page of a few hundred events (the CLI's, a fold's), and reading 4 MiB for
it made the 100,000-event timeline 1.4x slower. Later hops read 4 MiB: a hop costs the
loop a wake-up and the reader a wait for a worker thread."""

Chunk = tuple[int, list[bytes]]


@dataclass(slots=True)
class _Opened:
    """A log opened for one read: its descriptor, chunk reader and the scan state."""

    view: LogView
    fd: int
    checkpoints: dict[int, int]
    scan: Scan
    chunks: Iterator[Chunk]
    decoded: list[Event]
    """The events the worker decoded (the first `WORKER_DECODE` of the first chunk)."""
    pages: Iterator[list[Event]] | None
    """The rest of the first chunk's pages, for the loop (None: the worker did them all)."""
    more: bool
    """Whether lines may remain after the first chunk (if not, no second hop)."""


def _open(logs: Logs, session_id: str, flt: EventFilter) -> _Opened | None:
    """On a worker: open the session's log, find where the read starts, read a chunk."""
    # The worker's time counts from here: opening a log and splitting a 1 MiB chunk into
    # lines hold the GIL too (0.2 and 0.5 ms here), and a loop woken meanwhile waits.
    began = perf_counter()
    view = logs.get(session_id)
    opened = _open_view(logs, view)
    if opened is None:
        return None
    fd, size, checkpoints = opened
    try:
        start_seq, offset = scan_start(fd, flt, checkpoints)
        scan = Scan(view.path, flt, checkpoints, start_seq, page=LOOP_PAGE)
        chunks = read_lines(fd, offset, size)
        first = list(islice(chunks, 1))
        # More lines follow unless the chunk reached the end of what the view has seen
        # (it always ends at a line end): no hop just to find the end of a short log.
        more = any(base + sum(map(len, lines)) + len(lines) < size for base, lines in first)
        decoded: list[Event] = []
        pages: Iterator[list[Event]] | None = None
        if first:
            pages = scan.pages(*first[0])
            for page in pages:
                decoded += page
                if perf_counter() - began > WORKER_DECODE:
                    break
            else:
                pages = None
        return _Opened(view, fd, checkpoints, scan, chunks, decoded, pages, more)
    except BaseException:
        os.close(fd)
        raise


def _open_view(logs: Logs, view: LogView) -> tuple[int, int, dict[int, int]] | None:
    """Open a view's log for one read: (descriptor, size seen, a copy of its checkpoints).

    None for an empty log. Opened anew: the view's descriptor may be closed by another
    thread meanwhile. It must be the file the view opened (not a session deleted and
    created again).
    """
    with view.mutex:
        size, checkpoints, ino = view.size, dict(view.checkpoints), view.ino
    if size == 0:
        return None
    try:
        fd = atomic.open_file(view.path, os.O_RDONLY)
    except FileNotFoundError:
        logs.raise_gone(view)
    except OSError as exc:
        raise StorageError(f"cannot read {view.path}: {exc}") from exc
    try:
        if os.fstat(fd).st_ino != ino:
            logs.raise_gone(view)
    except BaseException:
        os.close(fd)
        raise
    return fd, size, checkpoints


def _next_chunks(chunks: Iterator[Chunk]) -> tuple[list[Chunk], bool]:
    """On a worker: the chunks of a hop after the first (`HOP_BYTES`).

    Splitting a 1 MiB chunk into lines holds the GIL for about half a millisecond, and the
    `pread` between two chunks releases it too briefly for a waiting loop to take it (the
    worker takes it back first): so between chunks the worker hands it over once it has
    held it for `THREAD_TURN` (`ThreadTurns`), or a hop of 4 MiB held the loop for 2 ms.
    """
    out: list[Chunk] = []
    size = 0
    turns = ThreadTurns()
    for base, lines in chunks:
        out.append((base, lines))
        size += sum(map(len, lines)) + len(lines)
        if size >= HOP_BYTES:
            return out, True
        turns.check()
    return out, False


async def read_events(logs: Logs, session_id: str, flt: EventFilter) -> list[Event]:
    """Read the events of a session that pass `flt` (see the module docstring)."""
    with full_collections_deferred():  # none walks the events built so far (see _gc)
        return await _read_events(logs, session_id, flt)


async def _read_events(logs: Logs, session_id: str, flt: EventFilter) -> list[Event]:
    # The clock starts before the first hop: the worker holds the GIL while it opens the
    # log and decodes (`WORKER_DECODE`), so a loop woken meanwhile could not run; once the
    # hop is back, the loop's first slice is only what is left of the budget.
    turns = Turns()
    opened = await anyio.to_thread.run_sync(_open, logs, session_id, flt)
    if opened is None:
        return []
    out = opened.decoded
    scan = opened.scan
    try:
        if opened.pages is not None:
            for page in opened.pages:
                out += page
                if turns.due():
                    await turns.take()
        more = opened.more
        while more and not scan.done:
            batch, more = await anyio.to_thread.run_sync(_next_chunks, opened.chunks)
            turns = Turns()  # the hop was a turn
            turns.taken = 1
            for base, lines in batch:
                for page in scan.pages(base, lines):
                    out += page
                    if turns.due():
                        await turns.take()
                if scan.done:
                    break
    finally:
        os.close(opened.fd)
    view = opened.view
    # Never wait for the mutex on the loop: a commit holds it through its fdatasync. The
    # offsets learned only make later reads start closer: if it is busy, they are dropped.
    if view.mutex.acquire(blocking=False):
        try:
            view.checkpoints.update(opened.checkpoints)
        finally:
            view.mutex.release()
    await turns.last()
    return out


def read_view(logs: Logs, view: LogView, flt: EventFilter) -> list[Event]:
    """Read the events of an open log that pass `flt`, all on the calling thread.

    Up to what this process has seen of the log (the view's size).
    """
    opened = _open_view(logs, view)
    if opened is None:
        return []
    fd, size, checkpoints = opened
    try:
        events = list(scan_events(fd, view.path, flt, size, checkpoints))
    finally:
        os.close(fd)
    with view.mutex:
        view.checkpoints.update(checkpoints)
    return events


def batch_marks(logs: Logs, session_id: str) -> Mapping[int, int]:
    """On a worker: `{sequence number: batch_end}` of the lines of a log that carry a mark.

    Up to what this process has seen of the log (the view's size), as reads are. A line is
    its event's sequence number (the log holds events 1..N, a line each). Nothing is
    decoded: the marks are found a MiB at a time by their place at a line's end (JSON
    escapes every quote and newline inside a string, so only a line's own last field ends
    with `}` and a newline), and a mark's line is numbered by counting newlines. Held as
    runs (`MarkRuns`: three numbers a batch); a mark past 64 bits (a damaged log's) as a
    dict, for the import to refuse.
    """
    try:
        return _marks(logs, session_id, MarkRuns())
    except OverflowError:
        return _marks(logs, session_id, {})


def _marks(logs: Logs, session_id: str, marks: _Marks) -> _Marks:
    view = logs.get(session_id)
    opened = _open_view(logs, view)
    if opened is None:
        return marks
    add = marks.add if isinstance(marks, MarkRuns) else marks.__setitem__
    fd, size, _ = opened
    seq, done, hop = 0, 0, _MARKS_HOP  # lines counted, bytes they take, bytes to read
    try:
        while done < size:
            # Read from the first line not counted (not a chunk's tail joined to the next
            # chunk): a chunk at a time in memory, never two and their join.
            data = os.pread(fd, min(hop, size - done), done)
            whole = data.rfind(b"\n") + 1
            if not whole:
                if done + len(data) >= size:
                    break  # a last line without its newline: not one of the log's yet
                hop *= 2  # a line longer than a hop: read it whole
                continue
            at = 0
            for found in _MARKED.finditer(data, 0, whole):
                seq += data.count(b"\n", at, found.start()) + 1
                at = found.end()
                add(seq, int(found[1]))
            seq += data.count(b"\n", at, whole)
            done += whole
            hop = _MARKS_HOP
            del data
    finally:
        os.close(fd)
    return marks


_MARKS_HOP = 1024 * 1024
"""Bytes of a log `batch_marks` reads at once: a read's hop (`HOP_BYTES`) would hold 4 MiB
for a scan that needs no more than a line at a time (the chunks: as fast)."""

# A line's end with a mark: `,"batch_end":N` then its checksum (none on a line from a
# writer that leaves it out), `}` and the newline.
_MARKED = re.compile(rb',"batch_end":([0-9]+)(?:,"crc32c":"[0-9a-f]{8}")?\}\n')

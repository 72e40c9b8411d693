"""The end of a log: where its committed part ends, torn tails and their quarantine.

A crash mid-append leaves at most one append's bytes at the end of a log: a last line
without its newline and, for `append_many`, the complete lines of a batch whose last line
is missing (every line of a batch but its last carries `batch_end`). Those bytes, never
acknowledged, are the torn tail: a writer moves them to a quarantine file and cuts the log.

A complete line (it ends with a newline) was written whole, and may have been
acknowledged: if it does not decode, fails its checksum, or breaks the run of sequence
numbers, that is corruption, never a torn tail. Writers stop on it with `CorruptLogError`
until a human (or `verify --repair`, within its limits) deals with it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from agentstore.backends.file import atomic
from agentstore.backends.file.layout import Layout
from agentstore.backends.file.lines import lines_backwards
from agentstore.codec import batch_end, decode_object
from agentstore.errors import CorruptLogError
from agentstore.events import Event, decode_event

__all__ = ["committed_end", "count_lines", "damaged_tail", "quarantine_tail", "read_tail"]

MAX_DAMAGED_TAIL = 8
"""The most lines `verify --repair` moves aside from a damaged end; more is a human's job."""


def _event_object(line: bytes) -> dict[str, Any] | None:
    try:
        obj = decode_object(line.rstrip(b"\n"))
    except CorruptLogError:
        return None
    return obj if "sequence_number" in obj else None


def committed_end(fd: int, size: int) -> int:
    """Return where the committed part of a log ends: before its torn tail, if any.

    Only an unterminated last line, and the lines of a batch whose last line is missing,
    are cut. A complete line that is not a valid event ends the committed part *after*
    it: reading it then raises `CorruptLogError`, as it must.
    """
    lines = lines_backwards(fd, size)
    item = next(lines, None)
    if item is None:
        return 0
    start, line = item
    cut = size
    if not line.endswith(b"\n"):
        cut = start
        item = next(lines, None)
        if item is None:
            return 0
        start, line = item
    obj = _event_object(line)
    if obj is None:
        return cut  # a damaged complete line: corruption, not a torn tail
    seq = obj.get("sequence_number")
    mark = obj.get("batch_end")
    if isinstance(mark, int) and isinstance(seq, int) and mark > seq:
        cut = start
        for start, line in lines:
            if batch_end(line) != mark:
                break
            cut = start
    return cut


def read_tail(fd: int, path: Path, end: int) -> tuple[Event, int] | None:
    """Return the last event of a log's committed part and where its line starts.

    Checks what a writer relies on: the last line is a valid event (checksum included),
    and the line before it holds the sequence number just before (a duplicated or swapped
    last line would make a writer repeat a sequence number). Raises `CorruptLogError`.
    """
    if end == 0:
        return None
    lines = lines_backwards(fd, end)
    start, line = next(lines)
    try:
        last = _decode_tail_line(line, path, None)
    except CorruptLogError as exc:
        # Say which line, as every other read does: count the lines before it (error path).
        raise CorruptLogError(
            str(exc).removeprefix(f"{path}: the last line: "),
            path=str(path),
            line=count_lines(fd, start) + 1,
        ) from exc
    seq = last.sequence_number
    before = next(lines, None)
    if before is None:
        if seq != 1:
            raise CorruptLogError(
                f"sequence number {seq} where 1 was expected", path=str(path), line=1
            )
        return last, start
    previous = _decode_tail_line(before[1], path, seq - 1)
    if previous.sequence_number != seq - 1:
        raise CorruptLogError(
            f"the last line holds sequence number {seq} where {previous.sequence_number + 1} "
            "was expected: a line was repeated, moved or removed; writers stop here until it "
            "is dealt with (run `agentstore verify` to see where)",
            path=str(path),
        )
    return last, start


def count_lines(fd: int, end: int) -> int:
    """Count the newlines in bytes 0..end of a file."""
    count, offset = 0, 0
    while offset < end:
        chunk = os.pread(fd, min(1 << 20, end - offset), offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


def _decode_tail_line(line: bytes, path: Path, lineno: int | None) -> Event:
    try:
        return decode_event(decode_object(line.rstrip(b"\n")))
    except CorruptLogError as exc:
        where = "" if lineno is not None else f"{path}: the last line: "
        raise CorruptLogError(
            f"{where}{exc}; writers stop here until it is dealt with: see `agentstore verify`",
            path=str(path),
            line=lineno,
        ) from exc


def damaged_tail(fd: int, path: Path, end: int) -> int | None:
    """Return where the damaged end of a log starts, or None if there is none to cut.

    The damaged end is the run of last lines that are themselves damaged (they fail their
    checksum or are not events) or repeat the sequence number of the line before them,
    at most `MAX_DAMAGED_TAIL` lines, provided that what remains ends soundly. An intact
    line is never cut for being out of order (two swapped lines): that needs a human.
    """
    window = []
    for start, line in lines_backwards(fd, end):
        try:
            seq: int | None = _decode_tail_line(line, path, None).sequence_number
        except CorruptLogError:
            seq = None
        window.append((start, seq))
        if len(window) > MAX_DAMAGED_TAIL + 1:
            break
    cut = end
    for index, (start, seq) in enumerate(window[:MAX_DAMAGED_TAIL]):
        before = window[index + 1][1] if index + 1 < len(window) else None
        if seq is not None and (before is None or seq > before):
            break  # a sound line that runs on: the damage (if any) ends here
        cut = start
    else:
        return None  # more damage than a repair may cut
    if cut == end:
        return None
    try:
        read_tail(fd, path, cut)
    except CorruptLogError:
        return None
    return cut


def quarantine_tail(fd: int, layout: Layout, session_id: str, end: int, size: int) -> Path:
    """Move bytes `end:size` of a session's log (open as `fd`) to a quarantine file.

    The copy is synced before the log is cut, so the bytes exist somewhere at every
    moment. The caller holds the log's lock exclusively. Returns the quarantine file.
    """
    torn = os.pread(fd, size - end, end)
    for attempt in range(1000):
        target = layout.quarantine_path(session_id, attempt)
        try:
            out = os.open(
                target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, atomic.FILE_MODE
            )
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 1000 quarantines in one microsecond
        raise FileExistsError(f"no free quarantine file name for {session_id!r}")
    try:
        atomic.write_all(out, torn)
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    os.close(out)
    atomic.fsync_dir(layout.events_dir)
    atomic.truncate(fd, end)
    os.fsync(fd)
    return target

"""Reading a log's lines: the one chunked reader (forwards), and backwards from an end.

Used by reads and the id index (`scan.py`), catch-up (`log.py`), torn tails (`tail.py`)
and verify.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["READ_CHUNK", "iter_lines", "last_line", "lines_backwards", "read_lines"]

READ_CHUNK = 1024 * 1024
"""Bytes read at a time (a longer line is joined across reads)."""


def read_lines(fd: int, start: int, end: int | None) -> Iterator[tuple[int, list[bytes]]]:
    """Yield (offset of the first, lines without their newline) for each chunk of a log.

    The one line reader: complete lines in bytes `start..end` (`end` None: to the end of
    the file), read in 1 MiB chunks (a longer line is joined across chunks). Bytes after
    the last newline (a torn or in-progress line) are not yielded. A chunk at a time, so
    that the per-line cost of a scan is a loop step, not a generator switch.
    """
    offset = start
    rest = b""
    base = start  # file offset of rest[0]
    while end is None or offset < end:
        size = READ_CHUNK if end is None else min(READ_CHUNK, end - offset)
        chunk = os.pread(fd, size, offset)
        if not chunk:
            return
        offset += len(chunk)
        data = rest + chunk if rest else chunk
        last_nl = data.rfind(b"\n")
        if last_nl < 0:
            rest = data
            continue
        yield base, data[:last_nl].split(b"\n")
        rest = data[last_nl + 1 :]
        base += last_nl + 1


def iter_lines(fd: int, start: int, end: int | None) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, line without its newline) of each complete line (see `read_lines`)."""
    for base, lines in read_lines(fd, start, end):
        for line in lines:
            yield base, line
            base += len(line) + 1


def lines_backwards(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield (start offset, bytes) of each line that ends at or before `end`, last first.

    The bytes keep their newline (the first line yielded lacks one if `end` is not at a
    line end). Reads grow from 4 KiB so that a short tail costs one small read and a
    10 MiB line costs O(its size), not O(size squared).
    """
    buf = b""
    base = end  # file offset of buf[0]
    limit = 0  # buf[:limit] is not yet yielded
    step = 4096
    while True:
        if limit:
            nl = buf.rfind(b"\n", 0, limit - 1)
            if nl >= 0:
                yield base + nl + 1, buf[nl + 1 : limit]
                limit = nl + 1
                continue
        if base == 0:
            if limit:
                yield 0, buf[:limit]
            return
        n = min(step, base)
        base -= n
        buf = os.pread(fd, n, base) + buf[:limit]
        limit = len(buf)
        step = min(step * 2, READ_CHUNK)


def last_line(fd: int, size: int) -> tuple[int, bytes]:
    """Return (start offset, bytes) of the last line ending at `size`."""
    return next(lines_backwards(fd, size), (0, b""))

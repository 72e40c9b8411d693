"""The OS calls that make writes durable and atomic, and opening files without symlinks.

The OS calls an append makes are module functions so that fault-injection tests can replace
them (ENOSPC, EIO) without touching the `os` module: always call them as `atomic.write_all`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from agentstore.backends.file.layout import temp_path
from agentstore.errors import CorruptLogError

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "fsync_dir",
    "open_file",
    "read_file",
    "read_from",
    "sync",
    "truncate",
    "write_all",
    "write_file_atomic",
]

DIR_MODE = 0o700
FILE_MODE = 0o600


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` (a short write is continued)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def sync(fd: int) -> None:
    """Make a file's data durable (`fdatasync`)."""
    os.fdatasync(fd)


def truncate(fd: int, size: int) -> None:
    """Cut a file back to `size` bytes."""
    os.ftruncate(fd, size)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a create, rename or unlink in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_file(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """Open a file of the data directory, never through a symlink.

    A symlink where a data file should be could make a write land outside the data
    directory: it is reported as corruption (`CorruptLogError` naming the path), as is a
    directory where a file should be.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptLogError(
                f"{path} is a symbolic link; agentstore never follows links in a data "
                "directory: replace it with the file itself",
                path=str(path),
            ) from exc
        if exc.errno == errno.EISDIR:
            raise CorruptLogError(
                f"{path} is a directory where a file should be: move it out of the data directory",
                path=str(path),
            ) from exc
        raise
    if not (flags & os.O_DIRECTORY) and not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CorruptLogError(
            f"{path} is not a regular file: move it out of the data directory",
            path=str(path),
        )
    return fd


def read_file(path: Path) -> bytes:
    """Read a whole small file (session, snapshot, index) without following a symlink."""
    fd = open_file(path, os.O_RDONLY)
    try:
        return read_from(fd, 0)
    finally:
        os.close(fd)


def read_from(fd: int, offset: int) -> bytes:
    """Read an open file from `offset` to its end."""
    chunks = []
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def write_file_atomic(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write a small file whole or not at all: temp file, fsync, rename or link, dir fsync.

    With `exclusive`, the file is hard-linked into place, which fails with
    `FileExistsError` if the name exists: atomic across processes.
    """
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)

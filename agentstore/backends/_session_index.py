"""A cache of every session's creation time and labels, so listing reads one file.

`list_sessions` must sort every session by creation time (newest first) and filter by
labels before paging; reading 10,000 session files for a page of 20 is what the Go
original does, and what this index avoids. It lives in `<data dir>/sessions.index.jsonl`,
one line per session file it has seen, and one per deletion::

    {"id":"…","ino":1234,"created_at":"…Z","labels":{"env":"dev"}}
    {"id":"…","deleted":true}

It is only a cache, never the truth: a line counts only while the session file it
describes is still there with the same inode (which the directory scan gives without a
`stat`; a session created again gets a new file, and its deletion wrote a tombstone).
Sessions it does not know (created by the Go original, or by a process that crashed
before writing its line) are read from their files, and a writable store appends what it
learned. A lost or torn line only costs one extra file read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

__all__ = ["IndexEntry", "SessionIndex"]

INDEX_NAME = "sessions.index.jsonl"
_FILE_MODE = 0o600
# Rewrite the index once it holds this many more lines than there are sessions.
_COMPACT_SLACK = 1000

IndexEntry = tuple[str, str, dict[str, str]]
"""(created_at normalised to RFC 3339 UTC, session id, labels)."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SessionIndex:
    """Reads and extends the session index of one data directory."""

    def __init__(self, root: Path, sessions_dir: Path, *, writable: bool) -> None:
        self.path = root / INDEX_NAME
        self._sessions_dir = sessions_dir
        self._writable = writable

    def _append(self, lines: list[bytes]) -> None:
        if not self._writable or not lines:
            return
        try:
            fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE
            )
        except OSError:
            return  # a cache: never fail an operation because it cannot be written
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _write_all(fd, b"".join(lines))
        except OSError:
            pass
        finally:
            os.close(fd)

    @staticmethod
    def _line(session_id: str, ino: int, created: str, labels: dict[str, str]) -> bytes:
        return (
            orjson.dumps({"id": session_id, "ino": ino, "created_at": created, "labels": labels})
            + b"\n"
        )

    def record(self, session_id: str, created: str, labels: dict[str, str]) -> None:
        """Note a session file just written (call right after creating it)."""
        try:
            ino = os.stat(self._sessions_dir / f"{session_id}.json").st_ino
        except OSError:
            return
        self._append([self._line(session_id, ino, created, labels)])

    def forget(self, session_id: str) -> None:
        """Note a session deleted (call right after removing its file)."""
        self._append([orjson.dumps({"id": session_id, "deleted": True}) + b"\n"])

    def _load(self) -> tuple[dict[str, tuple[int, str, dict[str, str]]], int]:
        known: dict[str, tuple[int, str, dict[str, str]]] = {}
        try:
            raw = self.path.read_bytes()
        except OSError:
            return known, 0
        lines = raw.split(b"\n")
        for line in lines:
            if not line:
                continue
            try:
                obj = orjson.loads(line)
                if obj.get("deleted"):
                    known.pop(str(obj["id"]), None)
                    continue
                entry = (int(obj["ino"]), str(obj["created_at"]), dict(obj.get("labels") or {}))
                known[str(obj["id"])] = entry
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a torn or foreign line: the session file is read instead
        return known, len(lines)

    def entries(self, read: Callable[[str], tuple[str, dict[str, str]] | None]) -> list[IndexEntry]:
        """Return every session's (created_at, id, labels), unsorted.

        `read(session_id)` reads a session file the index does not describe and returns
        its normalised creation time and labels, or None to leave the session out.
        """
        known, line_count = self._load()
        out: list[IndexEntry] = []
        learned: list[bytes] = []
        try:
            scan = os.scandir(self._sessions_dir)
        except FileNotFoundError:
            return out
        with scan:
            for entry in scan:
                name = entry.name
                if not name.endswith(".json") or name.startswith("."):
                    continue
                session_id = name[:-5]
                ino = entry.inode()
                cached = known.get(session_id)
                if cached is not None and cached[0] == ino:
                    out.append((cached[1], session_id, cached[2]))
                    continue
                found = read(session_id)
                if found is None:
                    continue
                out.append((found[0], session_id, found[1]))
                learned.append(self._line(session_id, ino, found[0], found[1]))
        if self._writable and line_count > len(out) * 2 + _COMPACT_SLACK:
            self._rewrite(out, known, learned)
        else:
            self._append(learned)
        return out

    def _rewrite(
        self,
        out: list[IndexEntry],
        known: dict[str, tuple[int, str, dict[str, str]]],
        learned: list[bytes],
    ) -> None:
        """Replace the index with one line per live session (drops deleted ones)."""
        fresh = {orjson.loads(line)["id"]: line for line in learned}
        lines = []
        for created, session_id, labels in out:
            line = fresh.get(session_id)
            if line is None:
                line = self._line(session_id, known[session_id][0], created, labels)
            lines.append(line)
        tmp = self.path.with_name(f".{INDEX_NAME}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
            try:
                _write_all(fd, b"".join(lines))
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def read_entry(obj: Any, parse_created: Callable[[Any], str]) -> tuple[str, dict[str, str]] | None:
    """Extract (normalised created_at, labels) from a decoded session file, or None."""
    if not isinstance(obj, dict):
        return None
    try:
        created = parse_created(obj.get("created_at"))
    except ValueError:
        return None
    labels = obj.get("labels") or {}
    if not isinstance(labels, dict):
        return None
    return created, {str(k): str(v) for k, v in labels.items()}

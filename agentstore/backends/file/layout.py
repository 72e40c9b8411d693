"""Every path and file name of a data directory, unambiguous against any valid session id.

    <data dir>/
      sessions/<id>.json                      a session (the Go original's layout)
      events/<id>.jsonl                       its log
      events/<id>.jsonl.torn-<UTC time>[-n]   a torn tail moved aside (kept for inspection)
      snapshots/<id>.json                     the default reducer's snapshot (Go's place)
      snapshots/.reducers/<hash>/<id>.json    any other reducer's snapshot
      sessions.index.jsonl                    the session index (a cache, see sessions.py)
      */.<name>.tmp-<pid>-<hex>               a file being written (temp + rename)

Why no valid id can be mistaken for a file of ours: a valid id starts with a letter or a
digit, so nothing that starts with `.` (temp files, `.reducers`) is ever a session's file;
a session's files end in `.json` / `.jsonl`, and a quarantined tail ends in its timestamp,
never in either. `classify` decides from the whole name, never from a substring, and every
id taken from a file name is validated exactly like an id from a caller.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agentstore.session import MAX_SESSION_ID_LENGTH

__all__ = ["INDEX_NAME", "FileKind", "Layout", "classify", "is_valid_id", "temp_path"]

INDEX_NAME = "sessions.index.jsonl"
REDUCERS_DIR = ".reducers"

FileKind = Literal["session", "log", "snapshot", "quarantine", "temp", "ours", "stray"]

# What `agentstore.session.validate_session_id` accepts (tests/durability check they agree).
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# strftime("%Y%m%dT%H%M%S%fZ") and an optional counter: what `quarantine_path` writes.
_TORN = re.compile(r"(?P<id>.+)\.jsonl\.torn-\d{8}T\d{12}Z(?:-\d+)?")
# `.<name>.tmp-<pid>-<hex>` (older versions wrote logs' temp files without the hex part).
_TEMP = re.compile(r"\..+\.tmp-(?P<pid>\d+)(?:-[0-9a-f]+)?")


def is_valid_id(session_id: str) -> bool:
    """Tell whether `session_id` is a valid session id (the rule callers are held to).

    The same rule as `validate_session_id`, without an exception: a listing asks it of
    every file name.
    """
    return (
        len(session_id) <= MAX_SESSION_ID_LENGTH
        and _VALID_ID.fullmatch(session_id) is not None
        and ".." not in session_id
    )


def classify(directory: str, name: str) -> tuple[FileKind, str | None]:
    """Say what a file in `sessions`, `events` or `snapshots` is, and whose.

    Returns (kind, session id or None). `temp` files carry the writer's pid instead of a
    session id (use `temp_pid`). Anything that is not exactly one of our names is `stray`.
    """
    if name.startswith("."):
        if _TEMP.fullmatch(name):
            return "temp", None
        if directory == "snapshots" and name == REDUCERS_DIR:
            return "ours", None
        return "stray", None
    suffix = ".jsonl" if directory == "events" else ".json"
    kind: FileKind = (
        "log" if directory == "events" else "session" if directory == "sessions" else "snapshot"
    )
    if name.endswith(suffix):
        sid = name[: -len(suffix)]
        return (kind, sid) if is_valid_id(sid) else ("stray", None)
    if directory == "events":
        match = _TORN.fullmatch(name)
        if match and is_valid_id(match["id"]):
            return "quarantine", match["id"]
    return "stray", None


def temp_pid(name: str) -> int | None:
    """Return the pid of the writer of a temp file (see `temp_path`), or None."""
    match = _TEMP.fullmatch(name)
    return int(match["pid"]) if match else None


def temp_path(path: Path) -> Path:
    """Return a fresh temp name beside `path` for a write that is renamed into place."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one data directory."""

    root: Path

    @property
    def sessions_dir(self) -> Path:
        """Where session files are."""
        return self.root / "sessions"

    @property
    def events_dir(self) -> Path:
        """Where logs (and quarantined tails) are."""
        return self.root / "events"

    @property
    def snapshots_dir(self) -> Path:
        """Where snapshots are."""
        return self.root / "snapshots"

    @property
    def reducers_dir(self) -> Path:
        """Where snapshots by reducers other than the default one are."""
        return self.snapshots_dir / REDUCERS_DIR

    @property
    def index_path(self) -> Path:
        """The session index."""
        return self.root / INDEX_NAME

    def session_path(self, session_id: str) -> Path:
        """Path of a session's file."""
        return self.sessions_dir / f"{session_id}.json"

    def log_path(self, session_id: str) -> Path:
        """Path of a session's log."""
        return self.events_dir / f"{session_id}.jsonl"

    def snapshot_path(self, session_id: str, reducer: str | None, default: str) -> Path:
        """Path of the snapshot `reducer` makes of a session (`default`: Go's place)."""
        if reducer is None or reducer == default:
            return self.snapshots_dir / f"{session_id}.json"
        return self.reducers_dir / reducer_dir_name(reducer) / f"{session_id}.json"

    def snapshot_paths(self, session_id: str) -> list[Path]:
        """Every snapshot of a session that exists, by any reducer."""
        paths = [self.snapshots_dir / f"{session_id}.json"]
        try:
            with os.scandir(self.reducers_dir) as entries:
                paths.extend(Path(e.path) / f"{session_id}.json" for e in entries)
        except OSError:
            pass
        return [p for p in paths if os.path.lexists(p)]

    def quarantine_path(self, session_id: str, attempt: int) -> Path:
        """A name for a torn tail of a session's log moved aside now (see `classify`)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        suffix = f"-{attempt}" if attempt else ""
        return self.events_dir / f"{session_id}.jsonl.torn-{stamp}{suffix}"


def reducer_dir_name(reducer: str) -> str:
    """Name the folder of one reducer's snapshots (a hash: fingerprints hold `:` and `<`)."""
    return hashlib.sha256(reducer.encode()).hexdigest()[:24]

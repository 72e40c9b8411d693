"""Snapshots: one file per (session, reducer), parsed in one place.

The default reducer's snapshot lives where the Go original keeps its one snapshot,
`snapshots/<id>.json` (Go reads it; a Go snapshot, made by no known reducer, is found there
too). Any other reducer's lives in `snapshots/.reducers/<hash of its fingerprint>/<id>.json`,
so stores with different reducers never overwrite each other's. A snapshot file names its
reducer; one that names another (or cannot be read) is ignored: snapshots are a cache.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import orjson

from agentstore.backends.base import SnapshotRecord
from agentstore.backends.file import atomic
from agentstore.errors import StorageError
from agentstore.events import format_timestamp, parse_timestamp

__all__ = ["encode_snapshot", "parse_snapshot", "read_snapshot"]

logger = logging.getLogger("agentstore")


def default_fingerprint() -> str:
    """The fingerprint of `agentstore.default_reducer`: whose snapshot takes Go's place."""
    from agentstore.state import default_reducer, reducer_fingerprint

    return reducer_fingerprint(default_reducer)


def encode_snapshot(snapshot: SnapshotRecord) -> bytes:
    """Return the bytes of a snapshot file (the Go original's fields, plus `reducer`)."""
    return orjson.dumps(
        {
            "session_id": snapshot.session_id,
            "version": snapshot.version,
            "state": snapshot.state,
            "created_at": format_timestamp(snapshot.created_at),
            "event_count": snapshot.version,
            "reducer": snapshot.reducer,
        },
        option=orjson.OPT_INDENT_2,
    )


def parse_snapshot(
    session_id: str, reducer: str | None, path: Path, raw: bytes
) -> SnapshotRecord | None:
    """Parse a snapshot file; None (with a warning) if unreadable or by another reducer."""
    try:
        obj = orjson.loads(raw)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        state = obj["state"]
        version = obj["version"]
        if not isinstance(state, dict) or not isinstance(version, int) or version < 0:
            raise ValueError("`state` must be an object and `version` an integer")
        made_by = obj.get("reducer")
        created: datetime = parse_timestamp(obj.get("created_at"))
        if obj.get("session_id", session_id) != session_id:
            raise ValueError(f"it names session {obj.get('session_id')!r}")
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("%s: the snapshot is unreadable (%s); rebuilding state", path, exc)
        return None
    made_by = made_by if isinstance(made_by, str) else None
    if made_by != reducer:
        return None
    return SnapshotRecord(session_id, version, state, made_by, created)


def read_snapshot(session_id: str, reducer: str | None, path: Path) -> SnapshotRecord | None:
    """Read the snapshot at `path`; None if there is none or it cannot be used."""
    try:
        raw = atomic.read_file(path)
    except FileNotFoundError:
        return None
    except (OSError, StorageError) as exc:
        logger.warning("%s: cannot read the snapshot (%s); rebuilding state", path, exc)
        return None
    return parse_snapshot(session_id, reducer, path, raw)

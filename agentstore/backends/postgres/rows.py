"""Turning rows into `Session`s and `Event`s, and sessions into row values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from agentstore.errors import CorruptLogError
from agentstore.events import Event, build_event, decode_metadata, empty_metadata
from agentstore.session import Session

__all__ = [
    "EVENT_COLUMNS",
    "SESSION_COLUMNS",
    "event_from_row",
    "session_from_row",
    "session_values",
]

SESSION_COLUMNS = (
    "id, name, created_at, labels, parent_id, forked_at, budget, extra, last_seq, last_ts"
)
EVENT_COLUMNS = "seq, id, type, ts, payload_json, metadata_json"


def session_from_row(row: Mapping[str, Any]) -> Session:
    """Build the `Session` of a `SESSION_COLUMNS` row (count and activity from its tail)."""
    created = row["created_at"]
    last_ts = row["last_ts"]
    data: dict[str, Any] = orjson.loads(row["extra"]) if row["extra"] else {}
    data.update(
        id=row["id"],
        name=row["name"],
        created_at=created,
        updated_at=created if last_ts is None or last_ts < created else last_ts,
        event_count=row["last_seq"],
        labels=orjson.loads(row["labels"]),
        parent_id=row["parent_id"],
        forked_at=row["forked_at"],
        budget=orjson.loads(row["budget"]) if row["budget"] else None,
    )
    return Session.model_validate(data)


def session_values(session: Session) -> tuple[Any, ...]:
    """Return the values of a new session's row, in the order of `SESSION_COLUMNS`[:8]."""
    extra = session.model_extra
    return (
        session.id,
        session.name,
        session.created_at,
        orjson.dumps(session.labels).decode(),
        session.parent_id,
        session.forked_at,
        session.budget.model_dump_json() if session.budget is not None else None,
        orjson.dumps(extra).decode() if extra else None,
    )


def event_from_row(session_id: str, row: Mapping[str, Any]) -> Event:
    """Build an `Event` from an `EVENT_COLUMNS` row, from the exact JSON text appended."""
    seq = row["seq"]
    try:
        payload = orjson.loads(row["payload_json"])
        raw_meta = row["metadata_json"]
        meta = empty_metadata() if raw_meta == "{}" else decode_metadata(orjson.loads(raw_meta))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise CorruptLogError(
            f"event {seq} cannot be decoded: {exc}", path=f"postgresql:{session_id}", line=seq
        ) from exc
    return build_event(row["id"], session_id, seq, row["type"], payload, row["ts"], meta)

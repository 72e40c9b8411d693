"""Turning rows into `Session`s and `Event`s, and sessions into row values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from agentstore._gc import gc_paused
from agentstore.backends.postgres.jsontext import refuse_nul_in_session
from agentstore.errors import CorruptLogError
from agentstore.events import Event, build_event, decode_metadata, empty_metadata
from agentstore.session import Session

__all__ = [
    "EVENT_COLUMNS",
    "SESSION_COLUMNS",
    "event_from_row",
    "events_from_rows",
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
    refuse_nul_in_session(session.id, session.labels, extra)
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


def events_from_rows(session_id: str, rows: list[Any], first: int = 0) -> list[Event]:
    """Build the `Event`s of rows whose `EVENT_COLUMNS` start at column `first`.

    The replay loop: columns by position (a lookup by name costs more than the rest of the
    row), the decoders bound to locals, and the cyclic collector paused for the batch (a
    replay of 10,000 events would otherwise run dozens of young collections over objects
    that all live on).
    """
    loads, build, decode, empty = orjson.loads, build_event, decode_metadata, empty_metadata
    s, i, t, ts, p, m = range(first, first + 6)
    events: list[Event] = []
    append = events.append
    with gc_paused():
        for row in rows:
            try:
                raw_meta = row[m]
                meta = empty() if raw_meta == "{}" else decode(loads(raw_meta))
                append(build(row[i], session_id, row[s], row[t], loads(row[p]), row[ts], meta))
            except (orjson.JSONDecodeError, ValueError):
                return [event_from_row(session_id, r) for r in rows]  # raises, naming the event
    return events

"""How agentstore's values travel in the gRPC messages of `agentstore.proto`, both ways.

Used by the server's gRPC door and by the remote backend (the client), so the two sides
cannot disagree. Times are RFC 3339 strings in UTC; payloads and metadata are the JSON
bytes exactly as stored; errors travel as a status code plus two trailing metadata keys
(`ERROR_CODE_KEY`, `ERROR_DETAILS_KEY`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from agentstore.backends.types import SkippedSession, SnapshotRecord
from agentstore.errors import InvalidEventError, InvalidInputError
from agentstore.events import (
    Event,
    build_event,
    decode_metadata,
    empty_metadata,
    encode_metadata,
    format_timestamp,
)
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.inputs import in_utc, loads_exact, refuse_duplicate_keys
from agentstore.session import Session
from agentstore.state import Budget

__all__ = [
    "ERROR_CODE_KEY",
    "ERROR_DETAILS_KEY",
    "budget_from_pb",
    "budget_to_pb",
    "event_batches",
    "event_from_pb",
    "event_to_pb",
    "fill_event_pb",
    "format_time",
    "json_value",
    "listing_to_pb",
    "parse_time",
    "session_from_pb",
    "session_to_pb",
    "skipped_from_pb",
    "snapshot_to_pb",
]

ERROR_CODE_KEY = "agentstore-error-code"
"""Trailing metadata: the error's stable code (`session_not_found`, ...)."""
ERROR_DETAILS_KEY = "agentstore-error-details-bin"
"""Trailing metadata: a JSON object of the error's fields (binary: any UTF-8 is fine)."""

# Session fields the message names; anything else a session holds travels in extra_json.
_SESSION_FIELDS = frozenset(
    (
        "id",
        "name",
        "created_at",
        "updated_at",
        "event_count",
        "labels",
        "parent_id",
        "forked_at",
        "budget",
    )
)


def format_time(ts: datetime) -> str:
    """Return `ts` as the RFC 3339 text agentstore writes (UTC, microseconds, `Z`)."""
    return format_timestamp(ts)


def parse_time(text: str, what: str = "time") -> datetime:
    """Parse an RFC 3339 time with a zone, in UTC; raise `InvalidInputError` naming `what`."""
    try:
        ts = datetime.fromisoformat(text)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"{what} is not an RFC 3339 time: {text!r}") from exc
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise InvalidInputError(f"{what} needs a time zone (e.g. 'Z'): {text!r}")
    return in_utc(ts, what)


def json_value(blob: bytes, what: str) -> Any:
    """Decode JSON bytes (empty means null); raise `InvalidEventError` naming `what`.

    orjson refuses NaN, infinity and nesting deeper than 1024, but reads an integer beyond
    64 bits as a float without a word: that would store another number than the one sent,
    so such an integer is refused too; and it keeps the last value of a key given twice,
    where other readers of the same bytes keep the first: refused too, as over HTTP.
    """
    if not blob:
        return None
    value = loads_exact(blob, what, InvalidEventError)
    if blob.find(b":") >= 0:  # an object somewhere (or a colon in a string)
        try:
            written = orjson.dumps(value)
        except orjson.JSONEncodeError:  # too deep to write: the store says so, by name
            return value
        refuse_duplicate_keys(blob, written, what, InvalidEventError)
    return value


def event_to_pb(event: Event, payload_json: bytes | None = None) -> pb.Event:
    """Return a stored event as a message (`payload_json`: the stored bytes, if at hand)."""
    msg = pb.Event()
    fill_event_pb(msg, event, payload_json)
    return msg


def fill_event_pb(msg: pb.Event, event: Event, payload_json: bytes | None = None) -> None:
    """Set the fields of an empty `msg` (e.g. from a repeated field's `add()`) to `event`.

    Filling the message that is sent, instead of building one and copying it into its
    parent, halves the cost of an append's answer (each copy is a copy in upb).
    """
    msg.id = event.id
    msg.session_id = event.session_id
    msg.sequence_number = event.sequence_number
    msg.type = str(event.type)
    msg.payload_json = payload_json if payload_json is not None else orjson.dumps(event.payload)
    if event.timestamp is not None:
        msg.timestamp = format_time(event.timestamp)
    meta = encode_metadata(event.metadata)  # no dict built for the usual empty metadata
    if meta != b"{}":
        msg.metadata_json = meta


def event_from_pb(msg: pb.Event) -> Event:
    """Return the `Event` a message describes (as the server stored it)."""
    raw_meta = json_value(msg.metadata_json, "metadata")
    return build_event(
        msg.id,
        msg.session_id,
        msg.sequence_number,
        msg.type,
        json_value(msg.payload_json, "payload"),
        parse_time(msg.timestamp, "timestamp"),
        decode_metadata(raw_meta) if raw_meta else empty_metadata(),
    )


def snapshot_to_pb(snapshot: SnapshotRecord) -> pb.Snapshot:
    """Return a snapshot record as a message (its state as JSON bytes): what the remote
    backend sends to store and what the Storage service answers with."""
    msg = pb.Snapshot(
        session_id=snapshot.session_id,
        version=snapshot.version,
        state_json=orjson.dumps(snapshot.state),
        created_at=format_time(snapshot.created_at),
    )
    if snapshot.reducer is not None:
        msg.reducer = snapshot.reducer
    return msg


def budget_to_pb(budget: Budget) -> pb.Budget:
    """Return a budget as a message (unset limits stay unset)."""
    msg = pb.Budget()
    if budget.max_cost_usd is not None:
        msg.max_cost_usd = budget.max_cost_usd
    if budget.max_tokens is not None:
        msg.max_tokens = budget.max_tokens
    return msg


def budget_from_pb(msg: pb.Budget) -> Budget:
    """Return the `Budget` a message describes; raise `InvalidInputError` if it is invalid."""
    return Budget(
        max_cost_usd=msg.max_cost_usd if msg.HasField("max_cost_usd") else None,
        max_tokens=msg.max_tokens if msg.HasField("max_tokens") else None,
    )


def session_to_pb(session: Session) -> pb.Session:
    """Return a session as a message; fields the message does not name go in extra_json."""
    msg = pb.Session(
        id=session.id,
        created_at=format_time(session.created_at),
        updated_at=format_time(session.updated_at),
        event_count=session.event_count,
        labels=session.labels,
    )
    if session.name is not None:
        msg.name = session.name
    if session.parent_id is not None:
        msg.parent_id = session.parent_id
    if session.forked_at is not None:
        msg.forked_at = session.forked_at
    if session.budget is not None:
        msg.budget.CopyFrom(budget_to_pb(session.budget))
    extra = session.__pydantic_extra__
    if extra:
        msg.extra_json = orjson.dumps({k: v for k, v in extra.items() if k not in _SESSION_FIELDS})
    return msg


def session_from_pb(msg: pb.Session) -> Session:
    """Return the `Session` a message describes."""
    fields: dict[str, Any] = {}
    extra = json_value(msg.extra_json, "extra_json")
    if isinstance(extra, Mapping):
        fields.update((k, v) for k, v in extra.items() if k not in _SESSION_FIELDS)
    fields.update(
        id=msg.id,
        name=msg.name if msg.HasField("name") else None,
        created_at=parse_time(msg.created_at, "created_at"),
        updated_at=parse_time(msg.updated_at, "updated_at") if msg.updated_at else None,
        event_count=msg.event_count,
        labels=dict(msg.labels),
        parent_id=msg.parent_id if msg.HasField("parent_id") else None,
        forked_at=msg.forked_at if msg.HasField("forked_at") else None,
        budget=budget_from_pb(msg.budget) if msg.HasField("budget") else None,
    )
    try:
        return Session(**fields)
    except ValueError as exc:
        raise InvalidInputError(f"invalid session: {exc}") from exc


def listing_to_pb(
    sessions: list[Session],
    next_cursor: str | None,
    skipped: list[SkippedSession],
    *,
    max_bytes: int,
    cursor_of: Callable[[Session], str],
) -> pb.ListSessionsResponse:
    """Return a page of a session listing as a message (both services answer with it).

    The message stays within `max_bytes` (what the door sends at most): the page ends
    before the session that would not fit, `next_cursor` then `cursor_of` the last one
    sent. Labels have no size limit, and a page of up to 1000 sessions was one message:
    a few sessions with large labels failed every listing ("Sent message larger than
    max"). A first session past the limit alone is sent all the same (and refused).
    """
    reply = pb.ListSessionsResponse(
        next_cursor=next_cursor or "",
        skipped=[pb.SkippedSession(session_id=s.session_id, reason=s.reason) for s in skipped],
    )
    room = max_bytes - reply.ByteSize() - _CURSOR_ROOM
    for at, session in enumerate(sessions):
        msg = session_to_pb(session)
        size = msg.ByteSize() + _FIELD_ROOM
        if size > room and at:
            reply.next_cursor = cursor_of(sessions[at - 1])
            break
        room -= size
        reply.sessions.append(msg)
    return reply


_CURSOR_ROOM = 1024
"""Bytes kept for a `next_cursor` set when a page ends early."""
_FIELD_ROOM = 8
"""Bytes a session takes in the message beyond its own: its tag and length."""


def skipped_from_pb(msg: pb.ListSessionsResponse) -> list[SkippedSession]:
    """Return the sessions a listing's page says it passed over (none from an older server)."""
    return [SkippedSession(s.session_id, s.reason) for s in msg.skipped]


async def event_batches(
    pages: AsyncIterator[list[Event]], max_bytes: int
) -> AsyncGenerator[pb.EventBatch, None]:
    """The messages of a read: each page of events as one `EventBatch`, or several where
    one would pass `max_bytes` (what the door sends at most).

    Pages are counted in events (500), and one event may be as large as a request body
    (4 MiB by default): three events of 3.5 MB made a message of 10.5 MB, and the session
    could not be read through gRPC at all (replay, state, copy: "Sent message larger than
    max"). An event past the limit alone is sent all the same (and refused).
    """
    async for page in pages:
        batch = pb.EventBatch()
        size = 0
        for event in page:
            msg = event_to_pb(event)
            n = msg.ByteSize() + _FIELD_ROOM
            if size + n > max_bytes and batch.events:
                yield batch
                batch = pb.EventBatch()
                size = 0
            batch.events.append(msg)
            size += n
        if batch.events or not page:
            yield batch

"""What clients send, checked before the store sees it: events as JSON objects, page cursors.

Both doors decode their wire format into plain values; these turn them into what the
store takes, or raise `InvalidInputError` saying what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from agentstore import Event, InvalidEventError, InvalidInputError, Metadata, Session, new_event
from agentstore.eventjson import off_calendar

__all__ = [
    "decode_cursor",
    "encode_cursor",
    "event_from_fields",
    "event_from_json",
    "in_utc",
    "integer_beyond_64_bits",
    "is_after_cursor",
    "loads_exact",
    "refuse_duplicate_keys",
]

_EVENT_FIELDS = frozenset(("id", "type", "payload", "metadata"))


def event_from_json(raw: object, index: int) -> Event:
    """Build an `Event` from a decoded JSON object (`index` names it in errors)."""
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"event {index}: an event must be a JSON object")
    unknown = set(raw) - _EVENT_FIELDS
    if unknown:
        raise InvalidInputError(
            f"event {index}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; an "
            "event has type, payload, metadata and an optional id (the store sets the rest)"
        )
    if "type" not in raw:
        raise InvalidInputError(f"event {index}: the event type is missing")
    return event_from_fields(
        raw["type"], raw.get("payload"), raw.get("id"), raw.get("metadata"), index
    )


def event_from_fields(
    type_name: object, payload: Any, event_id: object, metadata: object, index: int
) -> Event:
    """Build an `Event` from the four fields a client may send (`index` names it in errors).

    `event_id` and `metadata` are None when not sent. The gRPC door calls this with its
    message's fields directly (no JSON object built to be taken apart again); HTTP's JSON
    objects come through `event_from_json`.
    """
    if event_id is not None and not (isinstance(event_id, str) and 0 < len(event_id) <= 128):
        raise InvalidEventError(f"event {index}: the id must be a string of 1 to 128 characters")
    meta: Metadata | None = None
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidInputError(f"event {index}: metadata must be a JSON object")
        try:
            meta = Metadata(**metadata)
        except (ValueError, TypeError) as exc:  # Metadata's own error says "invalid metadata"
            raise InvalidInputError(f"event {index}: {exc}") from exc
    try:
        # `new_event`, not `Event(...)`: the type is checked the same way and the payload
        # when it is appended, without a pydantic validation of the whole model per event.
        event = new_event(type_name, payload, meta)  # type: ignore[arg-type]
    except InvalidEventError as exc:
        raise InvalidEventError(f"event {index}: {exc}") from None
    if event_id is not None:
        event.id = event_id
    return event


# --- times -----------------------------------------------------------------------------------


def in_utc(ts: datetime, what: str) -> datetime:
    """Return an aware `ts` in UTC; raise `InvalidInputError` if that leaves years 1-9999.

    `9999-12-31T23:59:59-14:00` is a valid time, but not once in UTC, where every reader
    puts it: stored as sent, it would fail every later read of what holds it.
    """
    why = off_calendar(ts)
    if why is not None:
        raise InvalidInputError(f"{what}: {why}")
    return ts.astimezone(UTC)


# --- integers orjson reads as floats --------------------------------------------------------

# orjson turns an integer beyond 64 bits into a float without a word, which would store a
# number other than the one sent. A run of 19+ digits is rare, so only then look closer:
# one scan of the document's strings and numbers (a loop, not a second recursive parse,
# which fails on nesting that orjson accepts). The run is told by two C passes (every
# digit made "0", the rest " "; then a search), where a regex search cost as much as
# parsing the document (27 ms a megabyte).
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 19  # the shortest integer that may not fit in 64 bits
_STRING_OR_NUMBER = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')


def integer_beyond_64_bits(raw: bytes) -> bytes | None:
    """Return the first integer of a valid JSON document that does not fit in 64 bits."""
    if raw.translate(_DIGITS).find(_LONG_RUN) < 0:
        return None
    for match in _STRING_OR_NUMBER.finditer(raw):
        token = match.group()
        if len(token) < 19 or token[0] == ord('"') or any(c in token for c in b".eE"):
            continue
        if len(token.lstrip(b"-")) > 20 or not -(2**63) <= int(token) < 2**64:
            return token
    return None


def loads_exact(raw: bytes, where: str, error: type[InvalidInputError] = InvalidInputError) -> Any:
    """Decode a JSON document; raise `error` naming `where` ("the request body", "event 0:
    payload") if it is not JSON, or if it holds an integer beyond 64 bits (orjson would
    read it as a float: another number than the one sent). Both doors decode this way."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON: {exc}") from None
    too_big = integer_beyond_64_bits(raw)
    if too_big is not None:
        raise error(
            f"{where}: the integer {too_big[:30].decode()} does not fit in 64 bits; "
            "send it as a string"
        )
    return value


# A key given twice in one object: orjson keeps the last value, other parsers the first,
# so what is stored would differ from what the sender's own tools show (RFC 8259 leaves
# the meaning open): refused. Every key is followed by one colon, the other colons are in
# strings; orjson writes back the strings it read and one key of a duplicate, so what it
# writes has fewer colons than what was sent exactly when a key was given twice, unless a
# string spelt a colon as \u003a (one more written): then the slow look decides.
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")


def refuse_duplicate_keys(
    raw: bytes, written: bytes, where: str, error: type[InvalidInputError] = InvalidInputError
) -> None:
    """Raise `error` naming the first key an object of `raw` gives twice.

    `written` is what `orjson.dumps` wrote of the value orjson read from `raw`; `where`
    names the document in the message ("the request body", "event 0: payload").
    """
    if written.count(b":") == raw.count(b":") and not _ESCAPED_COLON.search(raw):
        return

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise error(
                    f"{where} gives the key {key[:100]!r} twice in one object; send each key once"
                )
            seen.add(key)
        return dict(pairs)

    # `raw` is valid JSON that orjson read and wrote again: this parse fails on nothing else.
    json.loads(raw, object_pairs_hook=pairs_hook)


# --- cursors: the (created_at, id) of the last session of a page, opaque to clients ------


def encode_cursor(session: Session, store_cursor: str | None) -> str:
    """Return the opaque cursor that resumes a page after `session`.

    `store_cursor` is the store's cursor of the page `session` was read from.
    """
    raw = orjson.dumps([session.created_at.isoformat(), session.id, store_cursor])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[tuple[datetime, str], str | None]:
    """Return the (created_at, id) a cursor names and the store cursor to resume from."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, sid, store_cursor = orjson.loads(raw)
        if not isinstance(sid, str) or (
            store_cursor is not None and not isinstance(store_cursor, str)
        ):
            raise ValueError(sid)
        return (datetime.fromisoformat(created), sid), store_cursor
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise InvalidInputError(
            "invalid cursor: pass the next_cursor of a previous page unchanged"
        ) from exc


def is_after_cursor(session: Session, after: tuple[datetime, str] | None) -> bool:
    """Tell whether `session` comes after the cursor in newest-first order."""
    if after is None:
        return True
    created, sid = after
    try:
        return (session.created_at, session.id) < (created, sid)
    except TypeError:  # a naive cursor time against aware session times
        raise InvalidInputError("invalid cursor: its time has no time zone") from None

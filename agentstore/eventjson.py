"""The JSON of an event's parts: timestamps, payloads and metadata, checked for JSON.

Split from `agentstore.events` (which re-exports these names) to keep modules small.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import orjson

from agentstore.errors import InvalidEventError
from agentstore.metadata import NO_METADATA, Metadata

__all__ = [
    "aware_utc",
    "dumps_within",
    "encode_metadata",
    "encode_payload",
    "format_timestamp",
    "parse_timestamp",
]

_DUMPS_OPTIONS = orjson.OPT_UTC_Z

# orjson writes at most 254 levels of nesting (it reads 1,024). An event's JSON holds its
# payload one level down and a state's JSON (`state.data[type]`) two: a payload may be
# nested 252 levels deep, its metadata 253, or the event could be stored and then never
# written out again (every replay, export or `get_state` of its session would fail).
MAX_PAYLOAD_DEPTH = 252
_MAX_METADATA_DEPTH = 253
_ORJSON_WRITE_DEPTH = 254  # past it, orjson.dumps raises "Recursion limit reached"


def format_timestamp(ts: datetime) -> str:
    """Format a UTC timestamp as RFC 3339 with a `Z`, as written on disk."""
    return orjson.dumps(ts, option=_DUMPS_OPTIONS)[1:-1].decode()


def aware_utc(when: datetime) -> datetime:
    """`when`, a naive time taken as UTC: comparable with any zone-aware time (a backend
    or an older file may give a naive one)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def off_calendar(when: datetime) -> str | None:
    """Why `when` cannot be stored, or None if it can: stored times are UTC, and a time such
    as 0001-01-01T00:00:00+01:00 has no UTC form in Python (every later read of what held
    it would fail)."""
    if when.tzinfo is not None:
        try:
            when.astimezone(UTC)
        except OverflowError:
            return f"{when.isoformat()} is out of range: it leaves the years 1-9999 in UTC"
    return None


def _has_non_finite(value: Any) -> bool:
    """Tell whether a NaN or infinity hides anywhere orjson would write it as `null`.

    orjson serialises floats in dicts, lists and tuples, but also the fields of
    dataclasses and the values of enums (and a float subclass is still a float).
    """
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    if isinstance(value, Enum):
        return _has_non_finite(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_has_non_finite(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False


def encode_payload(payload: Any) -> bytes:
    """Serialise a payload to JSON bytes, or raise `InvalidEventError`.

    NaN and Infinity are refused: JSON has no such numbers and orjson would silently
    write them as `null`, which loses data. So is a payload nested more than
    `MAX_PAYLOAD_DEPTH` levels deep, which the event's own JSON could not hold.
    """
    try:
        blob = orjson.dumps(payload)
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        if "Recursion limit" in str(exc):
            raise _too_deep("payload", MAX_PAYLOAD_DEPTH) from None
        raise InvalidEventError(f"payload is not JSON-serialisable: {exc}") from exc
    # orjson writes NaN/Infinity as null, so only a payload whose JSON has a null can
    # hold one: a cheap scan spares the walk for almost every payload (`find`, not `in`:
    # bytes-in-bytes first tries the needle as an integer and raises and clears a TypeError).
    if blob.find(b"null") >= 0 and _has_non_finite(payload):
        raise InvalidEventError("payload holds NaN or Infinity, which JSON cannot represent")
    _check_depth(blob, payload, MAX_PAYLOAD_DEPTH, "payload")
    return blob


def _check_depth(blob: bytes, value: Any, most: int, what: str) -> None:
    """Refuse `value` (whose JSON is `blob`) if it is nested more than `most` levels deep."""
    # A JSON text nested deeper than `most` has more than `most` opening brackets: the
    # length and two C counts spare the exact test for almost every value.
    if len(blob) <= 2 * most or blob.count(b"[") + blob.count(b"{") <= most:
        return
    try:
        dumps_within(value, most)
    except TypeError:  # only the depth can fail here: the value itself was written
        raise _too_deep(what, most) from None


def dumps_within(value: Any, most: int) -> bytes:
    """`orjson.dumps` of `value` inside `254 - most` lists: raises `orjson.JSONEncodeError`
    (a `TypeError`) when `value` is nested more than `most` levels deep."""
    wrapped: Any = value
    for _ in range(_ORJSON_WRITE_DEPTH - most):
        wrapped = [wrapped]
    return orjson.dumps(wrapped)


def _too_deep(what: str, most: int) -> InvalidEventError:
    return InvalidEventError(
        f"{what} is nested more than {most} levels deep; an event's JSON could not hold "
        "it: flatten it, or store the deep part as a string"
    )


def encode_metadata(metadata: Metadata) -> bytes:
    """Serialise metadata (set fields only) to JSON bytes."""
    # Comparing with an all-None tuple is one C loop (the hot case: no metadata at all).
    if metadata.__pydantic_extra__ or tuple(metadata.__dict__.values()) != NO_METADATA:
        fields = metadata.to_dict()
        try:
            blob = orjson.dumps(fields)
        except TypeError as exc:
            if "Recursion limit" in str(exc):
                raise _too_deep("metadata", _MAX_METADATA_DEPTH) from None
            raise InvalidEventError(f"metadata is not JSON-serialisable: {exc}") from exc
        if blob.find(b"null") >= 0 and _has_non_finite(fields):  # see encode_payload
            raise InvalidEventError("metadata holds NaN or Infinity, which JSON cannot represent")
        _check_depth(blob, fields, _MAX_METADATA_DEPTH, "metadata")
        return blob
    return b"{}"


def parse_timestamp(value: Any) -> datetime:
    """Parse an RFC 3339 timestamp (nanoseconds are cut to microseconds) as UTC."""
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be a string, not {type(value).__name__}")
    ts = datetime.fromisoformat(value)
    tz = ts.tzinfo
    if tz is UTC:  # what agentstore writes ("...Z")
        return ts
    if tz is None:
        return ts.replace(tzinfo=UTC)
    return ts if ts.utcoffset() == UTC.utcoffset(None) else ts.astimezone(UTC)

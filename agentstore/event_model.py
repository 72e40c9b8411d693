"""The event classes: `Event`, as a caller builds one, and `StoredEvent`, read-only, as the
store hands one back; and `decode_event`, which reads a log line's object into one.

The line format is described in `agentstore.events`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.main import TupleGenerator

from agentstore.checked_model import CheckedModel, brief
from agentstore.errors import CorruptLogError, InvalidEventError
from agentstore.event_ids import legacy_event_id, new_event_id
from agentstore.event_types import KNOWN_TYPES, TYPE_NAME, check_event_type
from agentstore.eventjson import format_timestamp, parse_timestamp
from agentstore.metadata import (
    _SLOT_SETTERS,
    SHARED_EMPTY,
    Metadata,
    OwnMetadata,
    SlotDefault,
    decode_metadata,
    empty_metadata,
)

__all__ = ["STORED_FIELDS_SET", "Event", "StoredEvent", "decode_event"]


class Event(CheckedModel):
    """One immutable record in a session's log.

    Build one with `new_event()`; the store assigns `session_id`, `sequence_number` and
    `timestamp` when it is appended, and returns the stored copy.
    """

    model_config = ConfigDict(validate_assignment=True)

    id: str = Field(default_factory=new_event_id, min_length=1, max_length=128)
    """Unique id (UUID string); appending an id already in the session writes nothing."""
    session_id: str = ""
    """The session this event belongs to (set by the store)."""
    sequence_number: int = 0
    """Position in the session: 1, 2, 3 … (set by the store)."""
    type: str
    """An `EventType` or a user-defined lower-case name."""
    payload: Any = None
    """Any JSON value."""
    timestamp: datetime | None = None
    """When the event was stored, in UTC (set by the store)."""
    metadata: Metadata = Field(default_factory=lambda: empty_metadata())
    """Tokens, cost, model, tool name, timing."""

    invalid_error = InvalidEventError
    invalid_what = "event"

    @field_validator("type", mode="before")
    @classmethod
    def _check_type(cls, value: object) -> str:
        return check_event_type(value)

    @field_validator("metadata", mode="after")
    @classmethod
    def _own_metadata(cls, value: Metadata) -> Metadata:
        # A read event's shared empty Metadata is never another event's: a writable copy
        # (`Event(**vars(stored))`) gets an empty one of its own.
        return empty_metadata() if value is SHARED_EMPTY else value

    def with_metadata(self, metadata: Metadata | None = None, **fields: Any) -> Self:
        """Set this event's metadata in place and return the event, for chaining.

        Pass a `Metadata`, or its fields as keywords (`with_metadata(model="gpt-4o")`).
        """
        if metadata is None:
            try:
                metadata = Metadata(**fields)
            except ValidationError as exc:
                raise InvalidEventError(f"invalid metadata: {exc}") from exc
        elif fields:
            metadata = metadata.model_copy(update=fields)
        self.metadata = metadata
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the event as the JSON object of its on-disk line."""
        return {
            "id": self.id,
            "session_id": self.session_id,
            "sequence_number": self.sequence_number,
            "type": str(self.type),
            "payload": self.payload,
            "timestamp": format_timestamp(self.timestamp) if self.timestamp else None,
            # Not `self.metadata`: serialising makes no private copy of a shared empty one.
            "metadata": self.__dict__["metadata"].to_dict(),
        }

    def to_json(self) -> bytes:
        """Return the event as one line of JSON (no trailing newline), as stored on disk."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any]) -> Event:
        """Parse an event from its on-disk JSON (a line or an already-decoded object)."""
        try:
            obj = orjson.loads(data) if isinstance(data, bytes | str) else data
        except orjson.JSONDecodeError as exc:
            raise InvalidEventError(f"not valid JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise InvalidEventError("an event must be a JSON object")
        if obj.get("timestamp") is None:  # not stored yet
            fields = {k: v for k, v in obj.items() if v is not None or k == "payload"}
            fields.setdefault("metadata", {})
            return cls(**fields)
        try:
            return decode_event(obj)
        except CorruptLogError as exc:
            raise InvalidEventError(str(exc)) from exc


STORED_FIELDS_SET = {"id", "type", "payload", "metadata"}
"""The fields-set every read-only event shares: the fields a user gives `new_event`; the
store sets the others (see `agentstore.event_factory`)."""


class StoredEvent(Event):
    """An event as the store handed it back: read-only.

    The log is immutable, and so are the events read from it or returned by an append:
    setting a field raises `InvalidEventError`. To change something, make a new event
    (`stored.model_copy(update={...})` gives a copy with changes, still read-only;
    `Event.model_validate(stored.model_dump())` a writable one). Changing its nested values
    (the payload's dicts, the metadata) changes nothing in the store; an event read back
    has its own, while one returned by `append` holds the payload and metadata objects of
    the event that was appended. A stored event equals an `Event` with the same fields.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        raise InvalidEventError(
            f"stored events are read-only (tried to set {name!r}); make a new event, e.g. "
            "event.model_copy(update={...})"
        )

    def __delattr__(self, name: str) -> None:
        raise InvalidEventError(f"stored events are read-only (tried to delete {name!r})")

    @property
    def model_fields_set(self) -> set[str]:
        """The fields given when the event was made, as a set of the caller's own.

        Stored events share one set (built once per read, not once per event): handing it
        out would let a change made through one event show in all of them.
        """
        return set(self.__pydantic_fields_set__)

    def with_metadata(self, metadata: Metadata | None = None, **fields: Any) -> Self:
        """Refuse: a stored event's metadata cannot change (see the class docstring)."""
        raise InvalidEventError(
            "stored events are read-only: with_metadata() works on a new event before "
            "it is appended"
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Event):
            return self.__dict__ == other.__dict__
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to mutable Events: not hashable

    def __iter__(self) -> TupleGenerator:
        """Yield (field, value) pairs, as `BaseModel` does (`dict(event)`)."""
        _ = self.metadata  # the event's own metadata, never the shared empty one
        yield from super().__iter__()


# Set after the class is built (in its body pydantic would take them for field defaults).
# `metadata`: the event's own `Metadata`, made when first read (`OwnMetadata`). The three
# slots read as the defaults every stored event has until one is set (`model_copy`,
# unpickling): an event is built with its field dict alone, three calls fewer per event.
type.__setattr__(StoredEvent, "metadata", OwnMetadata())
for _slot, _default in (
    ("__pydantic_fields_set__", STORED_FIELDS_SET),
    ("__pydantic_extra__", None),
    ("__pydantic_private__", None),
):
    type.__setattr__(StoredEvent, _slot, SlotDefault(_slot, _default))


def decode_event(obj: dict[str, Any]) -> Event:
    """Build an `Event` from a decoded log line; raise `CorruptLogError` if it is not one."""
    # Once per event of every read: the common case (what agentstore writes) is tested
    # first with `type(...) is`, the rest falls back to the general checks. The event is
    # built here rather than by `event_factory.build_event` (the same steps): a call fewer
    # per event.
    global _last_session_id
    try:
        seq = obj["sequence_number"]
        session_id = obj["session_id"]
        type_name = obj["type"]
        raw_ts = obj["timestamp"]
        if not isinstance(seq, int) or not isinstance(session_id, str):
            raise ValueError("sequence_number must be an integer and session_id a string")
        # The events of a read share one session id object instead of a copy each (85
        # bytes an event kept, and less to free when they are dropped).
        if session_id == _last_session_id:
            session_id = _last_session_id
        else:
            _last_session_id = session_id
        known = KNOWN_TYPES.get(type_name) if type(type_name) is str else None
        if known is None:
            if not isinstance(type_name, str) or not TYPE_NAME.fullmatch(type_name):
                raise ValueError(f"invalid type {type_name!r}")
            known = type_name
        ts = _fromisoformat(raw_ts) if type(raw_ts) is str else None
        if ts is None or ts.tzinfo is not UTC:
            ts = parse_timestamp(raw_ts)
        raw_meta = obj.get("metadata")
        if not raw_meta:
            meta = SHARED_EMPTY  # the event's own copy is made when it is read
        elif type(raw_meta) is dict:
            meta = decode_metadata(raw_meta)
        else:
            meta = Metadata.model_validate(raw_meta)
        event_id = obj.get("id") or legacy_event_id(session_id, seq)
        if type(event_id) is not str and not isinstance(event_id, str):
            raise ValueError("id must be a string")
    except ValidationError as exc:
        raise CorruptLogError(f"not a valid event: {brief(exc)}") from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptLogError(f"not a valid event: {exc}") from exc
    event = _new_model(StoredEvent)
    _set_dict(
        event,
        {
            "id": event_id,
            "session_id": session_id,
            "sequence_number": seq,
            "type": known,
            "payload": obj.get("payload"),
            "timestamp": ts,
            "metadata": meta,
        },
    )
    return event  # its other slots read as StoredEvent's defaults


_new_model = BaseModel.__new__
_set_dict = _SLOT_SETTERS[0]
_fromisoformat = datetime.fromisoformat
_last_session_id = ""
"""The session id of the last event decoded (any thread: a race only shares less)."""

"""Checking and encoding what callers pass, before anything is written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import orjson

from agentstore.backends.base import EventFilter, PendingEvent
from agentstore.errors import InvalidEventError, InvalidInputError
from agentstore.eventjson import off_calendar
from agentstore.events import (
    Event,
    EventType,
    Metadata,
    build_event,
    check_event_type,
    copy_metadata,
    encode_metadata,
    encode_payload,
)
from agentstore.pricing import Pricer, apply_price
from agentstore.state import Budget

__all__ = [
    "aware",
    "check_budget",
    "check_count",
    "check_labels",
    "check_text",
    "make_filter",
    "pending_from_stored",
    "prepare",
    "private_copy",
]


def prepare(event: Event, pricer: Pricer | None = None) -> PendingEvent:
    """Validate and encode an event before anything is written.

    With a `pricer`, an LLM event with a model and tokens but no cost is priced first
    (the caller's metadata is left as it is; the priced copy is stored).
    """
    if not isinstance(event, Event):
        raise InvalidEventError(
            f"expected an Event (from agentstore.new_event), not {type(event).__name__}"
        )
    fields = event.__dict__
    event_id = fields["id"]
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 128:
        raise InvalidEventError("event id must be a string of 1 to 128 characters")
    metadata = fields["metadata"]
    if not isinstance(metadata, Metadata):
        raise InvalidEventError("event metadata must be an agentstore.Metadata")
    if pricer is not None:
        metadata = apply_price(fields["type"], metadata, pricer)
    payload = fields["payload"]
    return PendingEvent(
        id=event_id,
        type=check_event_type(fields["type"]),
        payload=payload,
        payload_json=encode_payload(payload),
        metadata=metadata,
        metadata_json=encode_metadata(metadata),
    )


def pending_from_stored(event: Event, *, event_id: str | None = None) -> PendingEvent:
    """Re-encode a stored event (fork, import, copy), keeping its timestamp."""
    pending = prepare(event)
    if event_id is not None:
        pending.id = event_id
    pending.timestamp = event.timestamp
    return pending


def private_copy(event: Event, payload_json: bytes) -> Event:
    """Copy an event for the reducer, so the cached state shares nothing with callers.

    The payload comes from the bytes that were stored (already encoded by `prepare`), so
    the state folds exactly what the log holds, even if the caller changed its object
    while the append was in flight.
    """
    return build_event(
        event.id,
        event.session_id,
        event.sequence_number,
        event.type,
        orjson.loads(payload_json),
        event.timestamp,
        copy_metadata(event.metadata),
    )


def check_count(name: str, value: object) -> None:
    """Raise `InvalidInputError` unless `value` is an integer >= 0."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError(f"{name} must be an integer >= 0, not {value!r}")


def check_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Return `labels` as a plain dict of non-empty strings to strings, or raise."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidInputError("labels must be a mapping of strings to strings")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidInputError(
                f"labels must map non-empty strings to strings; got {key!r}: {value!r}"
            )
        check_text("a label", key)
        check_text("a label", value)
    return dict(labels)


def check_text(what: str, value: str) -> str:
    """Return `value` unless it cannot be written as UTF-8 (a lone surrogate such as
    `"\\ud800"`, which Python strings can hold): then raise `InvalidInputError`.

    Every store writes text as UTF-8: caught here, before anything is written (the file
    backend wrote the session file, then failed on its index line with a `TypeError`).
    """
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{what} is not valid Unicode text: {exc.reason} at {exc.start} in {value!r}"
            ) from None
    return value


def aware(name: str, value: datetime | None) -> datetime | None:
    """Return `value` if it is a timezone-aware datetime (or None), else raise."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"{name} must be timezone-aware (e.g. datetime.now(UTC)); stored times are UTC"
        )
    return in_calendar(name, value)


def in_calendar(name: str, value: datetime) -> datetime:
    """Return `value` if it stays within the years 1-9999 once in UTC, else raise.

    Stored times are UTC: 0001-01-01T00:00:00+01:00 is a valid datetime that has no UTC
    form in Python, and written, it would fail every later read of what holds it.
    """
    why = off_calendar(value)
    if why is not None:
        raise InvalidInputError(f"{name} {why}")
    return value


def make_filter(
    types: Iterable[EventType | str] | None,
    since: datetime | None,
    until: datetime | None,
    from_seq: int | None,
    to_seq: int | None,
    limit: int | None,
) -> EventFilter:
    """Check `replay`'s arguments and turn them into an `EventFilter`."""
    for name, value in (("from_seq", from_seq), ("to_seq", to_seq), ("limit", limit)):
        if value is not None:
            check_count(name, value)
    if isinstance(types, str):
        types = [types]
    elif types is not None and not isinstance(types, Iterable):
        raise InvalidInputError(f"types must be an event type or several, not {types!r}")
    type_set = frozenset(check_event_type(t) for t in types) if types is not None else None
    return EventFilter(
        from_seq=max(from_seq or 1, 1),
        to_seq=to_seq,
        types=type_set,
        since=aware("since", since),
        until=aware("until", until),
        limit=limit,
    )


def check_budget(budget: object) -> Budget | None:
    """Return a private copy of `budget` (a `Budget` or None), its limits checked again.

    Raises `InvalidInputError` for anything else. Checked again: one built with
    `model_construct` or changed through its `__dict__` skipped validation, and a bad
    limit stored would make the session unreadable. A copy: the caller's object changed
    later must not change the budget the store holds for the session.
    """
    if budget is None:
        return None
    if not isinstance(budget, Budget):
        raise InvalidInputError("budget must be an agentstore.Budget (or None)")
    return Budget(**budget.__dict__)

"""Making events without pydantic's validation: `new_event` for callers, and `build_event`
for the store's hot path (every event it reads or writes), from values already valid."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from agentstore.event_ids import new_event_id
from agentstore.event_model import STORED_FIELDS_SET, Event, StoredEvent
from agentstore.event_types import EventType, check_event_type
from agentstore.metadata import _SLOT_SETTERS, Metadata, empty_metadata

__all__ = ["Assembler", "build_event", "new_event"]


Assembler = Callable[[str, str, int, str, Any, datetime | None, Metadata], Event]
"""`(id, session_id, sequence_number, type, payload, timestamp, metadata) -> Event`."""


def _assembler(cls: type[Event], doc: str, *, read_only: bool) -> Assembler:
    """Make a function that builds a `cls` from values already valid, skipping validation.

    `pydantic.BaseModel.model_construct` does the same but costs about 3 µs. One function
    per class, not one that takes the class: this is the hot path of every event the store
    reads or writes, and an extra call shows. The model's slots are set through their
    descriptors (a third cheaper than `object.__setattr__`, which looks the name up).

    With `read_only` (a `StoredEvent`), only the field dict is set: the other slots read
    as the class's defaults, the same fields-set object for every event (pydantic adds to
    it in place when a field is assigned, and an assignment to a `StoredEvent` is refused
    before it gets there; `model_copy` sets a copy of its own).
    """
    new = _new_model
    set_dict, set_fields, set_extra, set_private = _SLOT_SETTERS
    fields_set = frozenset(STORED_FIELDS_SET)

    def assemble(
        event_id: str,
        session_id: str,
        sequence_number: int,
        type_name: str,
        payload: Any,
        timestamp: datetime | None,
        metadata: Metadata,
    ) -> Event:
        event = new(cls)
        set_dict(
            event,
            {
                "id": event_id,
                "session_id": session_id,
                "sequence_number": sequence_number,
                "type": type_name,
                "payload": payload,
                "timestamp": timestamp,
                "metadata": metadata,
            },
        )
        if not read_only:
            set_fields(event, set(fields_set))
            set_extra(event, None)
            set_private(event, None)
        return event

    assemble.__doc__ = doc
    return assemble


_new_model = BaseModel.__new__

build_event: Assembler = _assembler(
    StoredEvent,
    "Assemble a read-only `StoredEvent` from values already valid, skipping validation.",
    read_only=True,
)
"""Assemble a read-only `StoredEvent` from values already valid (the store's hot path)."""

_new_writable = _assembler(Event, "Assemble a writable `Event` (for `new_event`).", read_only=False)


def new_event(
    type: EventType | str,
    payload: Any = None,
    metadata: Metadata | None = None,
) -> Event:
    """Create an event ready for `Store.append`.

    ```python
    event = new_event(EventType.TOOL_CALLED, {"tool": "search_flights"})
    stored = await store.append(session.id, event)
    ```

    `payload` is any JSON value; it is checked when the event is appended.
    """
    return _new_writable(
        new_event_id(),
        "",
        0,
        check_event_type(type),
        payload,
        None,
        metadata if metadata is not None else empty_metadata(),
    )

"""Events: the immutable records of an agent session, and how they are written as JSON.

One event is one line of JSON in a session's log (`events/<session id>.jsonl`), with the
field names of the Go original, plus `id`::

    {"id":"…","session_id":"…","sequence_number":3,"type":"tool_called",
     "payload":{"tool":"search_flights"},"timestamp":"2026-11-27T16:46:51.227142Z",
     "metadata":{"tool_name":"search_flights"}}

`metadata` leaves out fields that are not set. Lines written by the Go original have no
`id` (one is derived from the session id and sequence number when they are read) and carry
nanosecond timestamps (read with microsecond precision).

This module is the model's public face: the event classes live in `event_model`, the type
names in `event_types`, the fast constructors in `event_factory`, the JSON encoding in
`eventjson` and the metadata in `metadata`; every name is importable from here.
"""

from __future__ import annotations

from agentstore.event_factory import Assembler as Assembler
from agentstore.event_factory import build_event as build_event
from agentstore.event_factory import new_event
from agentstore.event_ids import legacy_event_id as legacy_event_id
from agentstore.event_ids import new_event_id as new_event_id
from agentstore.event_model import Event, StoredEvent
from agentstore.event_model import decode_event as decode_event
from agentstore.event_types import EventType
from agentstore.event_types import check_event_type as check_event_type
from agentstore.eventjson import encode_metadata as encode_metadata
from agentstore.eventjson import encode_payload as encode_payload
from agentstore.eventjson import format_timestamp as format_timestamp
from agentstore.eventjson import parse_timestamp as parse_timestamp
from agentstore.metadata import SHARED_EMPTY as SHARED_EMPTY
from agentstore.metadata import (
    Metadata,
    copy_metadata,
    decode_metadata,
    empty_metadata,
)

__all__ = [
    "Event",
    "EventType",
    "Metadata",
    "StoredEvent",
    "copy_metadata",
    "decode_metadata",
    "empty_metadata",
    "new_event",
]

"""One session in the in-memory backend: its session as JSON and its events as columns.

Each event is kept as immutable parts (id, type, timestamp, its payload as JSON bytes, a
private copy of its metadata taken apart), so nothing a caller does to an object it
passed in or got back can change what the store holds, and the cyclic collector has one
object per session to walk and none per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from agentstore.backends.base import PendingEvent, SnapshotRecord
from agentstore.events import Event, build_event
from agentstore.metadata import SHARED_EMPTY, MetadataParts, metadata_from_parts, metadata_parts
from agentstore.session import Session

__all__ = ["SessionLog"]

# A session's columns before its first event: one shared empty tuple, which reads like an
# empty list. Every list is an object the cyclic collector walks in each full collection
# (which pauses every thread, the event loop too, in proportion to the heap): 10,000
# sessions without events made 50,000 lists to walk for nothing.
_NO_EVENTS: Any = ()


@dataclass(slots=True)
class SessionLog:
    """One session: the session as JSON, and its events column by column.

    A session is kept as the bytes of its file on a data directory (read back as a new
    `Session` each time, as a file is), with what listings filter and sort on beside it:
    one object per session for the cyclic collector to walk (this one), where a kept
    `Session` was four (the model, its field dict, its fields-set, this).
    """

    session_json: bytes
    session_id: str
    created_at: datetime
    labels: dict[str, str]
    """The session's labels (strings only: not tracked by the collector)."""
    ids: list[str] = _NO_EVENTS
    types: list[str] = _NO_EVENTS
    stamps: list[datetime] = _NO_EVENTS
    payloads: list[bytes] = _NO_EVENTS
    metas: list[MetadataParts | None] = _NO_EVENTS
    """A private copy of each event's metadata, taken apart (None where it is empty): no
    work for the cyclic collector (a `Metadata` per event is two objects it walks)."""
    index: dict[str, int] = field(default_factory=dict)
    """Event id -> sequence number (idempotent appends)."""
    snapshots: dict[str | None, SnapshotRecord] = field(default_factory=dict)
    """One snapshot per reducer fingerprint."""

    @classmethod
    def of(cls, session: Session) -> SessionLog:
        """Keep `session` (its event count and update time are worked out when read)."""
        return cls(
            orjson.dumps(session.to_dict()), session.id, session.created_at, dict(session.labels)
        )

    def open_columns(self) -> None:
        """Give the session lists of its own, before its first event is stored."""
        self.ids, self.types, self.stamps, self.payloads, self.metas = [], [], [], [], []

    def view(self) -> Session:
        """A new `Session` (the caller may change it), read as a file backend reads its
        session file: 3 µs, no more than copying a kept model."""
        session = Session.model_validate_json(self.session_json)
        session.event_count = len(self.ids)
        if self.stamps and self.stamps[-1] > session.created_at:
            session.updated_at = self.stamps[-1]
        return session

    def store(self, pending: PendingEvent, ts: datetime) -> None:
        """Add an event (already planned: its sequence number is the next one)."""
        if not self.ids:
            self.open_columns()
        self.ids.append(pending.id)
        self.types.append(pending.type)
        self.stamps.append(ts)
        # orjson's bytes keep their 4 KiB working buffer: copy to the exact size.
        self.payloads.append(bytes(memoryview(pending.payload_json)))
        self.metas.append(
            None if pending.metadata_json == b"{}" else metadata_parts(pending.metadata)
        )

    def event(self, session_id: str, seq: int) -> Event:
        """Build a fresh `Event` (new objects throughout) for sequence number `seq`."""
        i = seq - 1
        meta = self.metas[i]
        return build_event(
            self.ids[i],
            session_id,
            seq,
            self.types[i],
            orjson.loads(self.payloads[i]),
            self.stamps[i],
            SHARED_EMPTY if meta is None else metadata_from_parts(meta),
        )

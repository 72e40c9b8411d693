"""The interface every storage backend implements.

A backend stores sessions, event logs and the latest snapshot of each session. It keeps
the sequence rules itself (sequence numbers 1..N with no gap or repeat, atomic batches,
`expected_seq`, idempotent ids, non-decreasing timestamps), so that it stays correct when
several stores share it; the `Store` only adds per-session locks and a state cache.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentstore.events import Event, Metadata, build_event, encode_line
from agentstore.session import Session

__all__ = [
    "AppendResult",
    "Backend",
    "EventFilter",
    "PendingEvent",
    "PlannedAppend",
    "SnapshotRecord",
    "plan_append",
]


@dataclass(slots=True)
class PendingEvent:
    """A validated, encoded event on its way into a log."""

    id: str
    type: str
    payload: Any
    payload_json: bytes
    metadata: Metadata
    metadata_json: bytes
    timestamp: datetime | None = None
    """Keep this timestamp (import, fork) instead of the time of the append."""


@dataclass(slots=True)
class AppendResult:
    """What an append did: the stored events (one per pending event, in order)."""

    events: list[Event]
    """The stored event for each pending event; a duplicate id gives the earlier event."""
    written: int
    """How many events were new and written (the rest were duplicates)."""
    previous_seq: int
    """The session's last sequence number before the append."""


@dataclass(slots=True, frozen=True)
class EventFilter:
    """Which events a read returns. Bounds are inclusive."""

    from_seq: int = 1
    to_seq: int | None = None
    types: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None

    def matches(self, event: Event) -> bool:
        """Tell whether `event` passes the type and time filters (not the seq bounds)."""
        if self.types is not None and event.type not in self.types:
            return False
        ts = event.timestamp
        if self.since is not None and ts is not None and ts < self.since:
            return False
        return not (self.until is not None and ts is not None and ts > self.until)


@dataclass(slots=True)
class SnapshotRecord:
    """The latest saved state of a session, and the reducer that made it."""

    session_id: str
    version: int
    state: dict[str, Any]
    reducer: str | None
    created_at: datetime


class Backend(ABC):
    """Storage for sessions, event logs and snapshots."""

    read_only: bool = False

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend for use (create directories, take locks)."""

    @abstractmethod
    async def close(self) -> None:
        """Release every resource; the backend is not used again."""

    @abstractmethod
    async def create_session(self, session: Session) -> None:
        """Store a new session; raise `SessionExistsError` if its id is taken."""

    @abstractmethod
    async def get_session(self, session_id: str) -> Session:
        """Return a session with `event_count`/`updated_at` from its log."""

    @abstractmethod
    async def list_sessions(
        self, *, limit: int, offset: int, labels: dict[str, str] | None
    ) -> list[Session]:
        """Return sessions newest first, filtered by labels before paging."""

    @abstractmethod
    async def delete_session(self, session_id: str) -> None:
        """Remove a session, its log and its snapshot."""

    @abstractmethod
    async def session_ids(self, prefix: str = "") -> list[str]:
        """Return the ids of every session whose id starts with `prefix`, sorted."""

    @abstractmethod
    async def session_size(self, session_id: str) -> int:
        """Return how many bytes the session takes in storage (log, session, snapshot)."""

    @abstractmethod
    async def last_seq(self, session_id: str) -> int:
        """Return the session's last sequence number (0 if empty)."""

    @abstractmethod
    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """Append a batch atomically: all of it or none of it."""

    @abstractmethod
    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        """Return the events that pass `flt`, in order."""

    @abstractmethod
    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Replace the session's snapshot, atomically."""

    @abstractmethod
    async def load_snapshot(self, session_id: str) -> SnapshotRecord | None:
        """Return the session's snapshot, or None if there is none or it cannot be read."""

    async def load_session_and_snapshot(
        self, session_id: str
    ) -> tuple[Session, SnapshotRecord | None]:
        """Return the session and its snapshot: what a cold `get_state` starts from.

        Backends that can fetch both in one round trip (one worker-thread hop, one query)
        override this.
        """
        return await self.get_session(session_id), await self.load_snapshot(session_id)


@dataclass(slots=True)
class PlannedAppend:
    """The lines and events a batch becomes, worked out before anything is written."""

    lines: list[bytes]
    """The encoded lines of the new events, in order."""
    events: list[Event | None]
    """The stored event per pending event; None where it duplicates an earlier event."""
    duplicates: dict[int, int]
    """Index in the batch -> sequence number of the stored event with the same id."""
    new_ids: dict[str, int]
    """Ids of the new events -> their sequence numbers."""
    last_seq: int
    last_ts: datetime | None


def plan_append(
    session_id: str,
    batch: Sequence[PendingEvent],
    *,
    last_seq: int,
    last_ts: datetime | None,
    known_ids: dict[str, int],
    now: datetime,
    encode: bool = True,
) -> PlannedAppend:
    """Assign sequence numbers and timestamps to a batch, skipping ids already stored.

    Timestamps never go backwards within a session: an event stamped earlier than the
    session's last event (a clock step back, or an imported event) gets the last one.
    With `encode=False` no lines are built (a backend that stores no lines).
    """
    lines: list[bytes] = []
    events: list[Event | None] = []
    duplicates: dict[int, int] = {}
    new_ids: dict[str, int] = {}
    seq = last_seq
    for index, pending in enumerate(batch):
        earlier = known_ids.get(pending.id)
        if earlier is None:
            earlier = new_ids.get(pending.id)
        if earlier is not None:
            duplicates[index] = earlier
            events.append(None)
            continue
        seq += 1
        ts = pending.timestamp or now
        if last_ts is not None and ts < last_ts:
            ts = last_ts
        last_ts = ts
        if encode:
            lines.append(
                encode_line(
                    pending.id,
                    session_id,
                    seq,
                    pending.type,
                    pending.payload_json,
                    ts,
                    pending.metadata_json,
                )
            )
        events.append(
            build_event(
                pending.id, session_id, seq, pending.type, pending.payload, ts, pending.metadata
            )
        )
        new_ids[pending.id] = seq
    return PlannedAppend(lines, events, duplicates, new_ids, seq, last_ts)

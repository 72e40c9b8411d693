"""The remote backend's side of the Storage service's messages: the backend contract's
values (pending events, session changes, filters, snapshots) as requests, and the
answers back as the contract's values. The values `agentstore.proto` shares with the
server's door (events, sessions, budgets, times) travel through `server.grpc_wire`."""

from __future__ import annotations

import orjson

from agentstore.backends.base import (
    UNSET,
    AppendResult,
    EventFilter,
    PendingEvent,
    SessionChanges,
    SnapshotRecord,
)
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.grpc_wire import (
    budget_to_pb,
    event_from_pb,
    format_time,
    parse_time,
    snapshot_to_pb,
)

__all__ = [
    "pending_to_pb",
    "read_request",
    "result_from_pb",
    "snapshot_from_pb",
    "snapshot_to_pb",
    "update_request",
]


def pending_to_pb(pending: PendingEvent) -> pb.PendingEvent:
    """An event to append, as its message."""
    msg = pb.PendingEvent(
        id=pending.id,
        type=pending.type,
        payload_json=pending.payload_json,
        metadata_json=pending.metadata_json,
    )
    if pending.timestamp is not None:
        msg.timestamp = format_time(pending.timestamp)
    if pending.batch_end is not None:
        msg.batch_end = pending.batch_end
    return msg


def result_from_pb(msg: pb.AppendResult) -> AppendResult:
    """An append's (or a creation's) answer as the contract's `AppendResult`."""
    born = parse_time(msg.session_created_at) if msg.session_created_at else None
    return AppendResult([event_from_pb(e) for e in msg.events], msg.written, msg.previous_seq, born)


def update_request(session_id: str, changes: SessionChanges) -> pb.UpdateSessionRequest:
    """The request that makes `changes` (each field set only if it changes)."""
    request = pb.UpdateSessionRequest(session_id=session_id)
    if changes.name is not UNSET:
        request.set_name = True
        if changes.name is not None:
            request.name = changes.name
    if changes.labels is not UNSET:
        request.set_labels = True
        request.labels.update(changes.labels)
    if changes.budget is not UNSET:
        request.set_budget = True
        if changes.budget is not None:
            request.budget.CopyFrom(budget_to_pb(changes.budget))
    return request


def read_request(session_id: str, flt: EventFilter) -> pb.ReadEventsRequest:
    """The request for the events that pass `flt` (an empty type set means any type)."""
    request = pb.ReadEventsRequest(
        session_id=session_id, from_seq=flt.from_seq, types=sorted(flt.types or ())
    )
    for name in ("to_seq", "limit"):
        value = getattr(flt, name)
        if value is not None:
            setattr(request, name, value)
    if flt.since is not None:
        request.since = format_time(flt.since)
    if flt.until is not None:
        request.until = format_time(flt.until)
    return request


def snapshot_from_pb(s: pb.Snapshot) -> SnapshotRecord:
    """A stored snapshot's message as the contract's `SnapshotRecord`."""
    state = orjson.loads(s.state_json) if s.state_json else {}
    return SnapshotRecord(
        s.session_id,
        s.version,
        state,
        s.reducer if s.HasField("reducer") else None,
        parse_time(s.created_at, "snapshot created_at"),
    )

"""The `Storage` gRPC service: the Backend contract over the wire, for the remote backend.

A remote client's `Store` validates, prices and folds on its side and sends encoded
events; this service hands them to the server store's backend, which applies the storage
rules (sequence numbers, atomic batches, `expected_seq`, idempotent ids, durability).
A client is not trusted: every session id is validated and every event is decoded and
encoded again here, so what reaches the log is exactly what an in-process append writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeAlias

import anyio
import grpc

from agentstore import InvalidInputError, Metadata
from agentstore.backends.base import (
    UNSET,
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SessionChanges,
    SessionQuery,
    SnapshotRecord,
    session_cursor,
)
from agentstore.errors import InvalidEventError, SessionNotFoundError
from agentstore.events import check_event_type, encode_metadata, encode_payload
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.errors import PayloadTooLargeError
from agentstore.server.grpc_calls import Handlers, RpcErrors
from agentstore.server.grpc_storage_reads import marks_pages, read_pages
from agentstore.server.grpc_stream import serve_append_stream
from agentstore.server.grpc_wire import (
    budget_from_pb,
    event_batches,
    fill_event_pb,
    format_time,
    json_value,
    listing_to_pb,
    parse_time,
    session_from_pb,
    session_to_pb,
    snapshot_to_pb,
)
from agentstore.server.grpc_writes import cancel_when_stopping, write_until_stopping
from agentstore.server.service import AgentStoreService
from agentstore.session import validate_session_id

__all__ = ["StorageServicer"]

_FIND_LIMIT = 1000

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def pending_from_pb(msg: pb.PendingEvent, index: int) -> PendingEvent:
    """Decode and re-encode a client's event: the bytes stored are the server's own."""
    where = f"event {index}"
    if not 0 < len(msg.id) <= 128:
        raise InvalidEventError(f"{where}: the id must be 1 to 128 characters")
    payload = json_value(msg.payload_json, f"{where}: payload")
    raw_meta = json_value(msg.metadata_json, f"{where}: metadata") or {}
    if not isinstance(raw_meta, Mapping):
        raise InvalidEventError(f"{where}: metadata must be a JSON object")
    try:
        metadata = Metadata(**raw_meta)
    except (ValueError, TypeError) as exc:  # Metadata's own error says "invalid metadata"
        raise InvalidEventError(f"{where}: {exc}") from exc
    stamp = _opt(msg, "timestamp")
    return PendingEvent(
        id=msg.id,
        type=check_event_type(msg.type),
        payload=payload,
        payload_json=encode_payload(payload),
        metadata=metadata,
        metadata_json=encode_metadata(metadata),
        timestamp=parse_time(stamp, f"{where}: timestamp") if stamp is not None else None,
        batch_end=_opt(msg, "batch_end"),  # checked by the backend with the whole batch
    )


def result_to_pb(result: AppendResult) -> pb.AppendResult:
    """Return an `AppendResult` as a message."""
    msg = pb.AppendResult()
    fill_result_pb(msg, result)
    return msg


def fill_result_pb(msg: pb.AppendResult, result: AppendResult) -> None:
    """Set the fields of an empty `msg` to `result` (no message built and copied)."""
    for event in result.events:
        fill_event_pb(msg.events.add(), event)
    msg.written = result.written
    msg.previous_seq = result.previous_seq
    if result.session_created_at is not None:
        msg.session_created_at = format_time(result.session_created_at)


def snapshot_from_pb(msg: pb.Snapshot) -> SnapshotRecord:
    """Return the snapshot record a message describes."""
    if msg.version < 1:
        # A snapshot folds events 1..version: the store never takes one of no event.
        raise InvalidInputError(f"a snapshot's version must be 1 or more, not {msg.version}")
    state = json_value(msg.state_json, "snapshot state")
    if not isinstance(state, dict):
        raise InvalidInputError("a snapshot's state must be a JSON object")
    return SnapshotRecord(
        session_id=validate_session_id(msg.session_id),
        version=msg.version,
        state=state,
        reducer=_opt(msg, "reducer"),
        created_at=parse_time(msg.created_at, "snapshot created_at"),
    )


class StorageServicer(pb_grpc.StorageServicer):
    """The server store's backend, for remote backends; ids validated, events re-encoded."""

    def __init__(self, service: AgentStoreService, handlers: Handlers | None = None) -> None:
        self.service = service
        self.limits = service.limits
        self.handlers = handlers

    @property
    def backend(self) -> Backend:
        """The backend of the server's store (read each call: it is set when the store opens)."""
        return self.service.store.backend

    def _guard(self, context: Context, request: Any) -> RpcErrors:
        return RpcErrors(context, request, self.limits.max_body_bytes, self.handlers)

    def _batch(self, events: Any) -> list[PendingEvent]:
        # No count limit: a Store's batch is atomic and cannot be split into several
        # calls; the message size limit (max_body_bytes) bounds it instead.
        return [pending_from_pb(msg, i) for i, msg in enumerate(events)]

    async def CreateSession(
        self, request: pb.StorageCreateSessionRequest, context: Context
    ) -> pb.AppendResult:
        async with self._guard(context, request):
            session = session_from_pb(request.session)
            validate_session_id(session.id)
            batch = self._batch(request.events)
            return result_to_pb(await self.backend.create_session(session, batch))

    async def CreateSessionFromPages(
        self, request_iterator: Any, context: Context
    ) -> pb.AppendResult:
        async with self._guard(context, None):
            first = await self._part(context)
            if first is None or not first.HasField("session"):
                raise InvalidInputError("the first message of the call carries the session")
            session = session_from_pb(first.session)
            validate_session_id(session.id)
            written = await self.backend.create_session_from_pages(
                session, self._pages(context, first)
            )
            return pb.AppendResult(written=written)

    async def _pages(
        self, context: Context, part: pb.StorageCreateSessionRequest | None
    ) -> AsyncIterator[list[PendingEvent]]:
        """The events of a CreateSessionFromPages call, a message at a time as they come."""
        first = part
        taken = 0  # events before this message, for the messages about one of them
        while part is not None:
            if part is not first and part.HasField("session"):
                raise InvalidInputError("only the first message of the call carries the session")
            yield [pending_from_pb(msg, taken + i) for i, msg in enumerate(part.events)]
            taken += len(part.events)
            part = await self._part(context)

    async def _part(self, context: Context) -> pb.StorageCreateSessionRequest | None:
        """The call's next message (None: the client is done), refused if over the limit."""
        part = await context.read()
        if part is grpc.aio.EOF:
            return None
        size = part.ByteSize()
        if size > self.limits.max_body_bytes:
            raise PayloadTooLargeError(
                f"a message of {size} bytes; the limit is {self.limits.max_body_bytes}: "
                "send fewer events in each"
            )
        return part  # type: ignore[no-any-return]

    async def GetSession(self, request: pb.GetSessionRequest, context: Context) -> pb.Session:
        async with self._guard(context, request):
            sid = validate_session_id(request.session_id)
            return session_to_pb(await self.backend.get_session(sid))

    async def UpdateSession(self, request: pb.UpdateSessionRequest, context: Context) -> pb.Session:
        async with self._guard(context, request):
            sid = validate_session_id(request.session_id)
            has_budget = request.HasField("budget")
            changes = SessionChanges(
                name=_opt(request, "name") if request.set_name else UNSET,
                labels=dict(request.labels) if request.set_labels else UNSET,
                budget=(
                    (budget_from_pb(request.budget) if has_budget else None)
                    if request.set_budget
                    else UNSET
                ),
            )
            return session_to_pb(await self.backend.update_session(sid, changes))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Context
    ) -> pb.ListSessionsResponse:
        async with self._guard(context, request):
            limit = request.limit or 100
            if not 1 <= limit <= self.limits.max_page:
                raise InvalidInputError(f"limit must be between 1 and {self.limits.max_page}")
            if request.prefix:
                raise InvalidInputError("the Storage service lists by labels and cursor only")
            query = SessionQuery(
                limit=limit, cursor=request.cursor or None, labels=dict(request.labels) or None
            )
            page = await self.backend.list_sessions(query)
            return listing_to_pb(
                page.sessions,
                page.next_cursor,
                page.skipped,
                max_bytes=2 * self.limits.max_body_bytes,  # what the door sends at most
                cursor_of=session_cursor,
            )

    async def FindSessionIds(
        self, request: pb.FindSessionIdsRequest, context: Context
    ) -> pb.FindSessionIdsResponse:
        async with self._guard(context, request):
            limit = min(max(request.limit, 1), _FIND_LIMIT)
            if request.prefix:  # a prefix of an id is an id: anything else names nothing
                validate_session_id(request.prefix)
            ids = await self.backend.find_session_ids(request.prefix, limit)
            return pb.FindSessionIdsResponse(ids=ids)

    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: Context
    ) -> pb.DeleteSessionResponse:
        async with self._guard(context, request):
            sid = validate_session_id(request.session_id)
            await self.backend.delete_session(sid, expected_seq=_opt(request, "expected_seq"))
            return pb.DeleteSessionResponse()

    async def StorageSize(
        self, request: pb.GetSessionRequest, context: Context
    ) -> pb.StorageSizeResponse:
        async with self._guard(context, request):
            size = await self.backend.storage_size(validate_session_id(request.session_id))
            return pb.StorageSizeResponse() if size is None else pb.StorageSizeResponse(bytes=size)

    async def LastSeq(self, request: pb.GetSessionRequest, context: Context) -> pb.LastSeqResponse:
        async with self._guard(context, request):
            last, born = await self.backend.head(validate_session_id(request.session_id))
            reply = pb.LastSeqResponse(last_seq=last)
            if born is not None:
                reply.created_at = format_time(born)
            return reply

    async def Append(self, request: pb.StorageAppendRequest, context: Context) -> pb.AppendResult:
        async with self._guard(context, request):
            result = pb.AppendResult()
            await self._append(request, result)
            return result

    async def AppendStream(  # type: ignore[override]
        self, request_iterator: Any, context: Context
    ) -> None:
        async with self._guard(context, None):
            await serve_append_stream(
                self.service, context, self._append, pb.StorageAppendStreamResponse
            )

    async def _append(self, request: pb.StorageAppendRequest, out: pb.AppendResult) -> None:
        """Append what `request` carries; write the result into `out`."""
        sid = validate_session_id(request.session_id)
        batch = self._batch(request.events)
        if not batch:
            raise InvalidInputError("an append needs at least one event")
        expected = _opt(request, "expected_seq")
        fill_result_pb(out, await self.backend.append(sid, batch, expected))

    # Written with `context.write` (not `yield`): see `write_until_stopping`.
    async def Read(  # type: ignore[override]
        self, request: pb.ReadEventsRequest, context: Context
    ) -> None:
        async with self._guard(context, request):
            sid = validate_session_id(request.session_id)
            for name in ("from_seq", "to_seq", "limit"):  # as the Store checks its own
                value = _opt(request, name)
                if value is not None and value < 0:
                    raise InvalidInputError(f"{name} must be an integer >= 0, not {value}")
            since, until = _opt(request, "since"), _opt(request, "until")
            flt = EventFilter(
                from_seq=max(_opt(request, "from_seq") or 1, 1),
                to_seq=_opt(request, "to_seq"),
                types=frozenset(check_event_type(t) for t in request.types)
                if request.types
                else None,
                since=parse_time(since, "since") if since is not None else None,
                until=parse_time(until, "until") if until is not None else None,
                limit=_opt(request, "limit"),
            )
            pages = read_pages(self.backend, sid, flt)
            batches = event_batches(pages, 2 * self.limits.max_body_bytes)
            await write_until_stopping(self.service, context, batches)

    # Written with `context.write` (not `yield`) so that the wait ends at once when the
    # server begins to stop: the client then sees the stream end and reconnects elsewhere.
    async def WaitForAppend(  # type: ignore[override]
        self, request: pb.WaitForAppendRequest, context: Context
    ) -> None:
        async with self._guard(context, request):
            sid = validate_session_id(request.session_id)
            seen = request.after_seq
            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_when_stopping, self.service, tg.cancel_scope)
                # A follow slot of the service layer: the same stream limits as Follow.
                async with self.service.follow(
                    sid, from_seq=seen + 1, client=context.peer()
                ) as evs:
                    async for event in evs:
                        if event.sequence_number <= seen:
                            continue
                        seen = max(event.sequence_number, await self.backend.last_seq(sid))
                        await context.write(pb.LastSeqResponse(last_seq=seen))
                tg.cancel_scope.cancel()

    async def SaveSnapshot(self, request: pb.Snapshot, context: Context) -> pb.SaveSnapshotResponse:
        async with self._guard(context, request):
            snapshot = snapshot_from_pb(request)
            try:
                last = await self.backend.last_seq(snapshot.session_id)
            except SessionNotFoundError:
                return pb.SaveSnapshotResponse()  # ignored, as every backend does
            if snapshot.version > last:
                # Of events the log lacks: kept, it would be trusted once the session grew
                # to its version, a state no event produced. (The log only grows while the
                # session lives, so what is checked here still holds when it is saved.)
                raise InvalidInputError(
                    f"a snapshot at version {snapshot.version} of session "
                    f"{snapshot.session_id}, whose last event is {last}: a snapshot covers "
                    "events the session has"
                )
            await self.backend.save_snapshot(snapshot)
            return pb.SaveSnapshotResponse()

    # Written with `context.write` (not `yield`): see `write_until_stopping`.
    async def BatchMarks(  # type: ignore[override]
        self, request: pb.GetSessionRequest, context: Context
    ) -> None:
        async with self._guard(context, request):
            sid = validate_session_id(request.session_id)
            marks = await self.backend.batch_marks(sid)
            await write_until_stopping(self.service, context, marks_pages(marks))

    async def LoadSessionAndSnapshot(
        self, request: pb.LoadSnapshotRequest, context: Context
    ) -> pb.SessionAndSnapshot:
        async with self._guard(context, request):
            sid = validate_session_id(request.session_id)
            session, snap = await self.backend.load_session_and_snapshot(
                sid, _opt(request, "reducer")
            )
            out = pb.SessionAndSnapshot(session=session_to_pb(session))
            if snap is not None:
                out.snapshot.CopyFrom(snapshot_to_pb(snap))
            return out

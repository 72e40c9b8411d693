"""The `AgentStore` gRPC service: each rpc decodes its message, calls `AgentStoreService`, encodes.

No rule lives here: validation, limits and the error mapping belong to the service layer
and `describe_error`, shared with the HTTP door. `RpcErrors()` turns whatever a call
raises into a gRPC status carrying the stable agentstore code in the trailing metadata.
The rpcs are documented in `agentstore.proto`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import grpc
import orjson
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from google.protobuf.message import DecodeError

from agentstore import AgentStoreError, Event, InvalidInputError
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.errors import PayloadTooLargeError, ServerBusyError, describe_error
from agentstore.server.grpc_stream import serve_append_stream
from agentstore.server.grpc_wire import (
    ERROR_CODE_KEY,
    ERROR_DETAILS_KEY,
    budget_from_pb,
    event_batches,
    event_to_pb,
    fill_event_pb,
    json_value,
    listing_to_pb,
    parse_time,
    session_to_pb,
)
from agentstore.server.inputs import encode_cursor, event_from_fields
from agentstore.server.service import AgentStoreService

__all__ = [
    "UNDECODABLE",
    "AgentStoreServicer",
    "Handlers",
    "RpcErrors",
    "cancel_when_stopping",
    "decode_checked",
    "follow",
    "write_until_stopping",
]

_log = logging.getLogger("agentstore.server")
_DEFAULT_PAGE = 50


class _Undecodable:
    """What a request that does not parse is handed to its rpc as (see `decode_checked`)."""


UNDECODABLE: Any = _Undecodable()
_NOT_A_MESSAGE = "the request message does not parse (a string field that is not UTF-8?)"


def decode_checked(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """Return `handler` with a deserializer that never raises into grpcio.

    grpcio answers a request that does not parse with UNKNOWN and the exception's class
    name, without our code. A single request becomes `UNDECODABLE`, which `RpcErrors`
    refuses with `invalid_input`; a message read from a request stream raises
    `InvalidInputError` from `context.read()`.
    """
    parse = handler.request_deserializer
    if parse is None:
        return handler

    def lenient(raw: bytes) -> Any:
        try:
            return parse(raw)
        except DecodeError:
            if handler.request_streaming:
                raise InvalidInputError(_NOT_A_MESSAGE) from None
            return UNDECODABLE

    return handler._replace(request_deserializer=lenient)


class Handlers:
    """How many rpc bodies are running, so a stopping server knows when none is left."""

    def __init__(self) -> None:
        self.running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        """Count one more running rpc body."""
        self.running += 1
        self._idle.clear()

    def leave(self) -> None:
        """Count one less."""
        self.running -= 1
        if not self.running:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no rpc body is running."""
        await self._idle.wait()


class RpcErrors:
    """End the call with the error's gRPC status and stable code; never a traceback.

    With `max_bytes`, a request larger than that is refused first (the transport's own
    limit is set higher, so this answer carries the `payload_too_large` code).
    """

    def __init__(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        request: Any = None,
        max_bytes: int | None = None,
        handlers: Handlers | None = None,
    ) -> None:
        self.context = context
        self.request = request
        self.max_bytes = max_bytes
        self.handlers = handlers

    async def __aenter__(self) -> None:
        if self.request is UNDECODABLE:
            await self._abort(InvalidInputError(_NOT_A_MESSAGE))
        size = self.request.ByteSize() if self.request is not None else 0
        if self.max_bytes is not None and size > self.max_bytes:
            await self._abort(
                PayloadTooLargeError(
                    f"the request is {size} bytes; the limit is {self.max_bytes}: split the batch"
                )
            )
        if self.handlers is not None:
            self.handlers.enter()

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, tb: Any) -> None:
        # The body is done before its error status is sent: grpc's abort waits until the
        # status goes out, behind messages a client that stopped reading never takes (a cut
        # read), and a stopping server waits only for bodies (see GrpcServerHandle.stop).
        if self.handlers is not None:
            self.handlers.leave()
        await self._end(exc)

    async def _end(self, exc: Any) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, grpc.aio.AbortError):
            return
        await self._abort(exc)

    async def _abort(self, exc: BaseException) -> None:
        # A task group wraps what its tasks raise; the client wants the error itself.
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if not isinstance(exc, AgentStoreError):
            _log.error("internal error", exc_info=exc)
        info = describe_error(exc)
        self.context.set_trailing_metadata(
            (
                (ERROR_CODE_KEY, info.code),
                (ERROR_DETAILS_KEY, orjson.dumps(info.details)),
            )
        )
        await self.context.abort(getattr(grpc.StatusCode, info.grpc_status), info.message)


def _opt(msg: Any, name: str) -> Any:
    """Return an optional field's value, or None when it is not set."""
    return getattr(msg, name) if msg.HasField(name) else None


class AgentStoreServicer(pb_grpc.AgentStoreServicer):
    """The API for agents in any language, over one `AgentStoreService`."""

    def __init__(self, service: AgentStoreService, handlers: Handlers | None = None) -> None:
        self.service = service
        self.max_bytes = service.limits.max_body_bytes
        self.handlers = handlers

    def _guard(self, context: grpc.aio.ServicerContext[Any, Any], request: Any) -> RpcErrors:
        return RpcErrors(context, request, self.max_bytes, self.handlers)

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListSessionsResponse:
        async with self._guard(context, request):
            page = await self.service.list_sessions(
                limit=request.limit or _DEFAULT_PAGE,
                cursor=request.cursor or None,
                labels=dict(request.labels) or None,
                prefix=request.prefix or None,
            )
            # A page cut to fit its message resumes after its last session, the store's
            # listing read from the start again (the cursor of its page is not known).
            return listing_to_pb(
                page.sessions,
                page.next_cursor,
                page.skipped,
                max_bytes=2 * self.service.limits.max_body_bytes,
                cursor_of=lambda session: encode_cursor(session, None),
            )

    async def CreateSession(
        self, request: pb.CreateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Session:
        async with self._guard(context, request):
            session = await self.service.create_session(
                name=_opt(request, "name"),
                session_id=_opt(request, "session_id"),
                labels=dict(request.labels) or None,
            )
            return session_to_pb(session)

    async def GetSession(
        self, request: pb.GetSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Session:
        async with self._guard(context, request):
            return session_to_pb(await self.service.get_session(request.session_id))

    async def UpdateSession(
        self, request: pb.UpdateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Session:
        async with self._guard(context, request):
            changes: dict[str, Any] = {}
            if request.set_name:
                changes["name"] = _opt(request, "name")
            if request.set_labels:
                changes["labels"] = dict(request.labels)
            if request.set_budget:
                has = request.HasField("budget")
                changes["budget"] = budget_from_pb(request.budget) if has else None
            session = await self.service.store.update_session(request.session_id, **changes)
            return session_to_pb(session)

    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteSessionResponse:
        async with self._guard(context, request):
            if request.HasField("expected_seq"):
                raise InvalidInputError("expected_seq on a delete is for the Storage service")
            await self.service.delete_session(request.session_id)
            return pb.DeleteSessionResponse()

    async def FindSession(
        self, request: pb.FindSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Session:
        async with self._guard(context, request):
            sid = await self.service.store.resolve_session_id(request.ref)
            return session_to_pb(await self.service.get_session(sid))

    async def Append(
        self, request: pb.AppendRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AppendResponse:
        async with self._guard(context, request):
            response = pb.AppendResponse()
            await self._append(request, response)
            return response

    async def AppendStream(  # type: ignore[override]
        self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        async with self._guard(context, None):
            await serve_append_stream(self.service, context, self._append, pb.AppendStreamResponse)

    async def _append(self, request: pb.AppendRequest, out: pb.AppendResponse) -> None:
        """Append what `request` carries; write the stored events into `out`."""
        self.service.check_batch_size(len(request.events))
        batch = [
            event_from_fields(
                msg.type,
                json_value(msg.payload_json, f"event {index}: payload"),
                msg.id or None,
                (
                    json_value(msg.metadata_json, f"event {index}: metadata")
                    if msg.metadata_json
                    else None
                ),
                index,
            )
            for index, msg in enumerate(request.events)
        ]
        stored = await self.service.append_events(
            request.session_id, batch, expected_seq=_opt(request, "expected_seq")
        )
        for event in stored:
            fill_event_pb(out.events.add(), event)

    # Written with `context.write` (not `yield`): see `write_until_stopping`.
    async def ReadEvents(  # type: ignore[override]
        self, request: pb.ReadEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        async with self._guard(context, request):
            since, until = _opt(request, "since"), _opt(request, "until")
            pages = await self.service.read_events(
                request.session_id,
                types=list(request.types) or None,
                since=parse_time(since, "since") if since is not None else None,
                until=parse_time(until, "until") if until is not None else None,
                from_seq=_opt(request, "from_seq"),
                to_seq=_opt(request, "to_seq"),
                limit=_opt(request, "limit"),
            )
            batches = event_batches(pages, 2 * self.service.limits.max_body_bytes)
            await write_until_stopping(self.service, context, batches)

    # Written with `context.write` (not `yield`) so that each send can time out.
    async def Follow(  # type: ignore[override]
        self, request: pb.FollowRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        async with self._guard(context, request):
            await follow(self.service, context, request.session_id, request.from_seq)

    async def GetState(
        self, request: pb.GetStateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StateResponse:
        async with self._guard(context, request):
            state = await self.service.get_state(request.session_id, at_seq=_opt(request, "at_seq"))
            return pb.StateResponse(state_json=state.model_dump_json().encode())

    async def Fork(
        self, request: pb.ForkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Session:
        async with self._guard(context, request):
            session = await self.service.fork(
                request.session_id,
                at_seq=request.at_seq,
                name=_opt(request, "name"),
                labels=dict(request.labels) or None,
            )
            return session_to_pb(session)

    async def GetStats(
        self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StatsResponse:
        async with self._guard(context, request):
            stats = await self.service.stats(request.session_id, at_seq=_opt(request, "at_seq"))
            return pb.StatsResponse(stats_json=orjson.dumps(stats))


async def follow(
    service: AgentStoreService,
    context: grpc.aio.ServicerContext[Any, Any],
    session_id: str,
    from_seq: int,
) -> None:
    """Write a session's events to a live-follow call until the client or the server leaves.

    Two tasks joined by a bounded queue: one reads the store's stream, one writes to the
    call. A client that stops reading blocks the writer (HTTP/2 flow control); the queue
    then fills and blocks the reader, and after `send_timeout` seconds the follower is
    dropped with `server_busy`: a follower that never reads costs bounded memory.
    """
    limits = service.limits
    failed: list[Exception] = []
    # Each live follow is one HTTP/2 stream; the peer string names the connection.
    async with service.follow(session_id, from_seq=from_seq, client=context.peer()) as events:
        send, receive = anyio.create_memory_object_stream[Event](limits.stream_queue)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_pump, events, send, failed)
            tg.start_soon(cancel_when_stopping, service, tg.cancel_scope)
            try:
                await _write_events(context, receive, limits.heartbeat, limits.send_timeout)
            finally:
                tg.cancel_scope.cancel()
    if failed:  # e.g. the session was deleted while followed
        raise failed[0]


async def _write_events(
    context: grpc.aio.ServicerContext[Any, Any],
    receive: ObjectReceiveStream[Event],
    heartbeat: float,
    send_timeout: float,
) -> None:
    async with receive:
        while True:
            message = pb.FollowResponse(heartbeat=pb.Heartbeat())
            with anyio.move_on_after(heartbeat):
                try:
                    message = pb.FollowResponse(event=event_to_pb(await receive.receive()))
                except anyio.EndOfStream:
                    return
            with anyio.move_on_after(send_timeout) as scope:
                await context.write(message)
            if scope.cancelled_caught:
                _log.warning("dropped a gRPC follow of %s: it did not read", context.peer())
                raise ServerBusyError(
                    f"this follower did not read for {send_timeout:g} s; it was dropped "
                    "(reconnect with from_seq)"
                )


async def _pump(
    events: AsyncIterator[Event], send: ObjectSendStream[Event], failed: list[Exception]
) -> None:
    async with send:
        try:
            async for event in events:
                await send.send(event)
        except Exception as exc:  # handed to the writer, which ends the call with it
            failed.append(exc)


async def cancel_when_stopping(service: AgentStoreService, scope: anyio.CancelScope) -> None:
    """Cancel `scope` once the server begins to stop (ends a live follow at once)."""
    await service.wait_stopping()
    scope.cancel()


async def write_until_stopping(
    service: AgentStoreService,
    context: grpc.aio.ServicerContext[Any, Any],
    messages: AsyncGenerator[Any, None],
) -> None:
    """Write `messages` to a server-streaming read; cut it off once the server begins to stop.

    A read is no acknowledged write: a client that stops reading blocks `context.write` on
    HTTP/2 flow control, and grpc's graceful stop would wait for it the whole grace period.
    The cut is `ServerBusyError` (a remote client retries elsewhere), never a clean end a
    client could take for the whole read.
    """
    done = False
    async with contextlib.aclosing(messages), anyio.create_task_group() as tg:
        tg.start_soon(cancel_when_stopping, service, tg.cancel_scope)
        async for message in messages:
            await context.write(message)
        done = True
        tg.cancel_scope.cancel()
    if not done:
        raise ServerBusyError("the server is shutting down; read the rest from another one")

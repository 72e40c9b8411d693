"""The `AgentStore` gRPC service: each rpc decodes its message, calls `AgentStoreService`, encodes.

No rule lives here: validation, limits and the error mapping belong to the service layer
and `describe_error`, shared with the HTTP door; what every rpc shares is in
`grpc_calls` (the error guard) and `grpc_writes` (server-streaming replies). The rpcs are
documented in `agentstore.proto`.
"""

from __future__ import annotations

from typing import Any

import grpc
import orjson

from agentstore import InvalidInputError
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_calls import Handlers, RpcErrors
from agentstore.server.grpc_stream import serve_append_stream
from agentstore.server.grpc_wire import (
    budget_from_pb,
    event_batches,
    fill_event_pb,
    json_value,
    listing_to_pb,
    parse_time,
    session_to_pb,
)
from agentstore.server.grpc_writes import follow, write_until_stopping
from agentstore.server.inputs import encode_cursor, event_from_fields
from agentstore.server.service import AgentStoreService

__all__ = ["AgentStoreServicer"]

_DEFAULT_PAGE = 50


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

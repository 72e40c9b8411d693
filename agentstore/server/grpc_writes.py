"""Server-streaming replies of the gRPC services: live follows and reads, each cut off
once the server begins to stop (a client that stops reading must not hold a graceful stop
for its whole grace period, nor grow the server's memory).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
import grpc
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from agentstore import Event
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.errors import ServerBusyError
from agentstore.server.grpc_wire import event_to_pb
from agentstore.server.service import AgentStoreService

__all__ = ["cancel_when_stopping", "follow", "write_until_stopping"]

_log = logging.getLogger("agentstore.server")


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

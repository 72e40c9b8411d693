"""Streaming responses of the HTTP door: event lists (JSON or JSON lines) and live follow (SSE).

A live follow is two tasks joined by a bounded queue: one reads the session's events
from the store, one writes them to the client. A client that stops reading fills the
socket buffer, then the queue; once a write or a queued event has waited `send_timeout`
seconds the client is dropped, so a follower that never reads costs bounded memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.responses import Response, StreamingResponse

from agentstore import AgentStoreError, Event, Session
from agentstore.server.http_flow import ABORT_KEY, HEAD_KEY
from agentstore.server.http_middleware import (
    Message,
    Receive,
    Scope,
    Send,
    problem_body,
)
from agentstore.server.service import AgentStoreService

__all__ = ["ReadResponse", "SseResponse", "export_chunks", "json_array_chunks", "jsonl_chunks"]

_log = logging.getLogger("agentstore.server")


async def json_array_chunks(pages: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
    """Encode pages of events as one JSON array, one event per line (like `export`)."""
    first = True
    async for page in pages:
        lines = b",\n".join(event.to_json() for event in page)
        yield (b"[\n" if first else b",\n") + lines
        first = False
    yield b"[]\n" if first else b"\n]\n"


async def export_chunks(
    session: Session, pages: AsyncIterator[list[Event]]
) -> AsyncIterator[bytes]:
    """Encode `{"session": ..., "events": [...]}` byte for byte as `agentstore export` does."""
    yield b'{"session":' + orjson.dumps(session.to_dict()) + b',\n"events":'
    async for chunk in json_array_chunks(pages):
        yield chunk.rstrip(b"\n")  # as the CLI does: the array ends without a newline
    yield b"}\n"


async def jsonl_chunks(pages: AsyncIterator[list[Event]]) -> AsyncIterator[bytes]:
    """Encode pages of events as JSON lines (one object per line)."""
    async for page in pages:
        yield b"".join(event.to_json() + b"\n" for event in page)


class ReadResponse(StreamingResponse):
    """A streamed read (events, export), cut off when the server begins to stop, when
    its client leaves a chunk unread for `send_timeout` seconds, or when a later page
    fails (the session was deleted, or made again: `SessionNotFoundError`).

    A read is no acknowledged write: a client that stopped reading must not hold the
    shutdown for uvicorn's whole graceful timeout, nor keep its place among the requests
    in flight (ConcurrencyLimitMiddleware) for good: a few such clients (`curl | less`
    left open) would refuse every request with 429. The connection is dropped mid-body,
    so the client sees an unfinished (chunked) body, never a clean end it could take for
    the whole read.
    """

    def __init__(
        self, service: AgentStoreService, content: AsyncIterator[bytes], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the body; on shutdown or a stalled client, drop the connection at once."""
        if scope.get(HEAD_KEY):  # the headers alone: the first page was read, no more
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        timeout = self.service.limits.send_timeout

        async def timed_send(message: Message) -> None:
            try:
                with anyio.fail_after(timeout):
                    await send(message)
            except TimeoutError:
                raise _Dropped from None

        done = False
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_when_stopping, self.service, tg.cancel_scope)
                await super().__call__(scope, receive, timed_send)
                done = True
                tg.cancel_scope.cancel()
        except* _Dropped:
            _log.warning("dropped a read of %s: it did not read in time", scope.get("client"))
        except* AgentStoreError as failed:
            # Too late for problem JSON (the answer has begun): the body ends unfinished,
            # so the client cannot take what it got for the whole read. Not a bug of ours
            # (the session was deleted, made again, ...): one line, no traceback.
            _log.warning("cut a read of %s short: %s", scope.get("client"), failed.exceptions[0])
        if not done:
            abort = (scope.get("extensions") or {}).get(ABORT_KEY)
            if abort is not None:
                abort()  # a polite close would wait for the unread bytes to go out
                await anyio.lowlevel.checkpoint()  # uvicorn sees the connection gone


async def _cancel_when_stopping(service: AgentStoreService, scope: anyio.CancelScope) -> None:
    await service.wait_stopping()
    scope.cancel()


_STOPPING_SEND = 1.0
"""Seconds the end of a live follow may wait for its client while the server stops."""


class _Dropped(Exception):
    """The client did not read in time."""


class SseResponse(Response):
    """An ASGI response that follows a session as Server-Sent Events.

    Each event is `id: <sequence number>` and `data: <event JSON>`; an error that ends the
    stream (the session was deleted) is `event: error` with problem JSON. A comment line is
    sent every `heartbeat` seconds of silence, so proxies keep the connection open and a
    dead client is noticed. The stream ends when the client goes away, when the server
    shuts down, or when the client stops reading.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        service: AgentStoreService,
        events: AsyncIterator[Event],
        exit_stack: contextlib.AsyncExitStack,
    ) -> None:
        # A Response (so FastAPI passes it through), but it writes its own body.
        self.status_code = 200
        self.background = None
        self.service = service
        self.events = events
        self.exit_stack = exit_stack
        self.limits = service.limits
        # Bytes in the queue, not only events: 64 events of 3 MB each were 192 MB a
        # follower that does not read. One event is let in whatever its size.
        self._queued = 0
        self._room = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream until the client leaves, the server stops, or the client is too slow."""
        async with self.exit_stack:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-store"),
                        (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
                    ],
                }
            )
            if scope.get(HEAD_KEY):  # the session and the limits were checked: that is all
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            queue_in, queue_out = anyio.create_memory_object_stream[bytes](self.limits.stream_queue)
            dropped = False
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._read_store, queue_in)
                    tg.start_soon(self._watch_disconnect, receive, tg.cancel_scope)
                    tg.start_soon(self._watch_shutdown, tg.cancel_scope)
                    await self._write_client(queue_out, send)
                    tg.cancel_scope.cancel()
            except* _Dropped:
                dropped = True
            abort = (scope.get("extensions") or {}).get(ABORT_KEY)
            if dropped:
                client = scope.get("client")
                _log.warning("dropped a live follow of %s: it did not read in time", client)
                if abort is not None:
                    abort()  # a polite close would wait forever for the unread bytes
                return
            # While the server stops, a client that is not reading must not hold it up for
            # the whole send timeout: it resumes elsewhere with Last-Event-ID anyway.
            wait = _STOPPING_SEND if self.service.stopping else self.limits.send_timeout
            with anyio.move_on_after(wait) as ending:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            if ending.cancelled_caught and abort is not None:
                abort()

    async def _read_store(self, queue: MemoryObjectSendStream[bytes]) -> None:
        async with queue:
            try:
                async for event in self.events:
                    chunk = b"id: %d\ndata: %s\n\n" % (event.sequence_number, event.to_json())
                    await self._enqueue(queue, chunk)
            except AgentStoreError as exc:  # e.g. the session was deleted while followed
                _, problem = problem_body(exc, None)
                with contextlib.suppress(anyio.BrokenResourceError):
                    await self._enqueue(queue, b"event: error\ndata: %s\n\n" % problem)
            except anyio.BrokenResourceError:
                return  # the writer is gone (the client left or was dropped)

    async def _enqueue(self, queue: MemoryObjectSendStream[bytes], chunk: bytes) -> None:
        limit = self.limits.stream_queue_bytes
        try:
            with anyio.fail_after(self.limits.send_timeout):
                while self._queued and self._queued + len(chunk) > limit:
                    self._room = anyio.Event()
                    await self._room.wait()
                self._queued += len(chunk)
                await queue.send(chunk)
        except TimeoutError:
            raise _Dropped from None

    async def _write_client(self, queue: MemoryObjectReceiveStream[bytes], send: Send) -> None:
        await self._send(send, b"retry: 2000\n: following\n\n")
        async with queue:
            while True:
                chunk: Any = None
                with anyio.move_on_after(self.limits.heartbeat):
                    try:
                        chunk = await queue.receive()
                    except anyio.EndOfStream:
                        return
                    self._queued -= len(chunk)
                    self._room.set()
                await self._send(send, chunk if chunk is not None else b": keep-alive\n\n")

    async def _send(self, send: Send, body: bytes) -> None:
        try:
            with anyio.fail_after(self.limits.send_timeout):
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except TimeoutError:
            raise _Dropped from None

    @staticmethod
    async def _watch_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope.cancel()
                return

    async def _watch_shutdown(self, scope: anyio.CancelScope) -> None:
        await self.service.wait_stopping()
        scope.cancel()

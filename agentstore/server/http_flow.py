"""ASGI middleware of the HTTP door that govern a request's flow: the body's size and
stalls, the requests in flight, HEAD as GET, and dropping a connection at once.

Pure ASGI (not Starlette's `BaseHTTPMiddleware`), so that a too-large body is refused
while it is still arriving and a live follow streams through untouched.
"""

from __future__ import annotations

import anyio

from agentstore.server.errors import (
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerBusyError,
)
from agentstore.server.http_middleware import ASGIApp, Message, Receive, Scope, Send, send_problem

__all__ = [
    "ABORT_KEY",
    "BodyLimitMiddleware",
    "ConcurrencyLimitMiddleware",
    "ConnectionAbortMiddleware",
    "HEAD_KEY",
    "HeadMiddleware",
]


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes`, by Content-Length or while they stream in,
    and bodies that stall: no byte for `timeout` seconds before the body is whole.

    A stalled body (a client that hung after its headers) would otherwise keep its request
    in flight for good, and a few of them fill ConcurrencyLimitMiddleware's places: 429 for
    everyone. The stall is timed per wait, so a slow body that keeps coming is accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._waiting: set[anyio.CancelScope] = set()

    def stop_waiting(self, grace: float = 1.0) -> None:
        """The server begins to stop: a body that stalls `grace` seconds from now is refused.

        Nothing of it is acknowledged, and its wait would hold the shutdown for the whole
        `timeout`; a body still arriving is not cut.
        """
        self.timeout = min(self.timeout, grace)
        deadline = anyio.current_time() + grace
        for scope in self._waiting:
            scope.deadline = min(scope.deadline, deadline)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse at once on a large Content-Length; count and time the body's parts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLargeError(
            f"the request body is larger than the limit of {self.max_bytes} bytes; "
            "split the batch or raise the server's --max-body-bytes"
        )
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await send_problem(send, too_large, scope.get("path", ""))
                    return
        seen = 0
        whole = False
        answering = False

        async def counted() -> Message:
            nonlocal seen, whole
            # After the body only a disconnect comes, whenever the client leaves; and once
            # the answer has begun (a live follow, a long read: GETs that use no body) the
            # answer's own send timeout watches the client, not this one.
            if whole or answering:
                return await receive()
            with anyio.move_on_after(self.timeout) as waiting:
                self._waiting.add(waiting)
                try:
                    message = await receive()
                finally:
                    self._waiting.discard(waiting)
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    whole = not message.get("more_body", False)
                    if seen > self.max_bytes:
                        raise too_large  # the route's error handler answers 413
                else:
                    whole = True
                return message
            # The route's error handler answers 408; nothing of the body was used.
            raise RequestTimeoutError(
                f"the request body stalled: no part of it came for {self.timeout:g} s; "
                "send it whole (the server's --body-timeout)"
            )

        async def watched(message: Message) -> None:
            nonlocal answering
            answering = True
            await send(message)

        await self.app(scope, counted, watched)


class ConcurrencyLimitMiddleware:
    """Refuse a request past `limit` in flight with problem JSON (`server_busy`, 429).

    Instead of uvicorn's `limit_concurrency`, which answered `Service Unavailable` in plain
    text before the app ran, and counted idle keep-alive connections as well as requests.
    The health check is never refused: a busy server is not a dead one.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.running = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request while it runs; answer 429 if `limit` are running already."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path == "/healthz":
            await self.app(scope, receive, send)
            return
        if self.running >= self.limit:
            busy = ServerBusyError(f"too many requests in flight ({self.limit}); retry later")
            await send_problem(send, busy, path, [(b"retry-after", b"1")])
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1


HEAD_KEY = "agentstore.head"
"""Key in the scope of a HEAD request that the app sees as GET (see `HeadMiddleware`)."""


class HeadMiddleware:
    """Answer HEAD as GET without the body (RFC 9110: a server that has GET has HEAD).

    The routes take GET only: a HEAD went on to the web UI's files and was 404, even for
    a session that exists (a client checking one with HEAD was told it did not) and for
    /healthz. uvicorn leaves out the body of a HEAD's answer; a streamed answer (a read,
    a live follow) sees `HEAD_KEY` and sends its headers alone, reading nothing more.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a HEAD request on as a GET marked with `HEAD_KEY`."""
        if scope["type"] == "http" and scope.get("method") == "HEAD":
            scope = {**scope, "method": "GET", HEAD_KEY: True}
        await self.app(scope, receive, send)


ABORT_KEY = "agentstore.abort_connection"
"""Key in `scope["extensions"]` of a callable that drops the client's connection at once."""


class ConnectionAbortMiddleware:
    """Give the app a way to drop a connection at once, unsent data and all.

    Closing a connection politely waits for the unsent bytes to go out, which never
    happens with a client that stopped reading: the socket and its buffer would stay
    forever and hold up shutdown. uvicorn's `send` belongs to an object holding the
    asyncio transport; its `abort()` drops it. Outermost, so it sees uvicorn's own `send`;
    with another server the callable does nothing and the connection is closed normally.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the abort callable to the request's extensions."""
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)

            def abort() -> None:
                if transport is not None and hasattr(transport, "abort"):
                    transport.abort()

            scope["extensions"] = {**(scope.get("extensions") or {}), ABORT_KEY: abort}
        await self.app(scope, receive, send)

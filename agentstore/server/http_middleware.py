"""Plain ASGI middleware of the HTTP door: token, body size, security headers, access log.

They are pure ASGI (not Starlette's `BaseHTTPMiddleware`) so that a live follow streams
through them untouched and a too-large body is refused while it is still arriving.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import anyio
import orjson

from agentstore.server.errors import (
    ForbiddenHostError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerBusyError,
    UnauthenticatedError,
    describe_error,
)

__all__ = [
    "AccessLogMiddleware",
    "AuthMiddleware",
    "ABORT_KEY",
    "BodyLimitMiddleware",
    "ConcurrencyLimitMiddleware",
    "ConnectionAbortMiddleware",
    "HEAD_KEY",
    "HeadMiddleware",
    "LoopbackHostMiddleware",
    "SecurityHeadersMiddleware",
    "problem_body",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# No inline script or style, nothing from elsewhere: the web UI ships its own files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

_access = logging.getLogger("agentstore.server.access")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def problem_body(exc: BaseException, instance: str | None) -> tuple[int, bytes]:
    """Return the status and RFC 9457 problem JSON for an error."""
    info = describe_error(exc)
    body: dict[str, Any] = {
        "type": f"urn:agentstore:error:{info.code}",
        "title": info.code.replace("_", " "),
        "status": info.http_status,
        "detail": info.message,
        "code": info.code,
    }
    if instance is not None:
        body["instance"] = instance
    if info.details:
        body["details"] = info.details
    return info.http_status, orjson.dumps(body)


async def _send_problem(
    send: Send, exc: BaseException, path: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    status, body = problem_body(exc, path)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Require `Authorization: Bearer <token>` on the API (not on /healthz or the UI files)."""

    def __init__(self, app: ASGIApp, token: str, protected: tuple[str, ...] = ("/v1",)) -> None:
        self.app = app
        self._token = token.encode()
        self._protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on if it carries the token; answer 401 otherwise."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self._protected):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, rest = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = rest.strip()
                break
        # Constant time: how much of a guess matched must not show in the response time.
        if given and hmac.compare_digest(given, self._token):
            await self.app(scope, receive, send)
            return
        message = "a valid token is required: send 'Authorization: Bearer <token>'"
        await _send_problem(
            send, UnauthenticatedError(message), path, [(b"www-authenticate", b"Bearer")]
        )


class LoopbackHostMiddleware:
    """Without a token, answer only requests that name this machine in their Host header.

    A web page cannot read a loopback server across origins, except by DNS rebinding: its
    own name made to resolve to 127.0.0.1. Its requests then carry that name as Host, so
    refusing hosts other than loopback names (and `allowed`) closes that door. A page can
    still *send* a request without reading the answer (a form, or a text/plain fetch: no
    preflight), so a request whose `Origin` is another site than this server, `allowed`
    or `origins` (the CORS ones) is refused too; curl and other clients send no Origin.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowed: frozenset[str] = frozenset(),
        origins: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.allowed = allowed
        self.origins = origins

    def _own_origin(self, origin: str, host: str) -> bool:
        if origin in self.origins:
            return True
        try:
            parts = urlsplit(origin)
            name = parts.hostname or ""
        except ValueError:  # e.g. "http://[nonsense"
            return False
        if not parts.netloc:  # "null": a sandboxed page or a file
            return False
        return parts.netloc.lower() == host.lower() or name in self.allowed

    def _ok(self, host: str) -> bool:
        name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host
        if not host.startswith("[") and host.count(":") == 1:
            name = host.split(":", 1)[0]
        name = name.lower()
        if name in self.allowed or name == "localhost" or name.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse (403 forbidden_host) a request whose Host is not this machine."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        host = next((v for k, v in headers if k == b"host"), b"").decode("latin-1")
        origin = next((v for k, v in headers if k == b"origin"), None)
        if origin is not None and self._ok(host):
            if self._own_origin(origin.decode("latin-1"), host):
                await self.app(scope, receive, send)
                return
            message = (
                f"this server has no token, so a web page from another origin "
                f"({origin.decode('latin-1')[:100]}) may not use it; use a token "
                "(--token-file) or list the origin with --cors-origin"
            )
        elif self._ok(host):
            await self.app(scope, receive, send)
            return
        else:
            message = (
                "this server has no token, so it only answers requests for localhost; "
                "use a token (--token-file) or list the name with --allowed-host"
            )
        await _send_problem(send, ForbiddenHostError(message), scope.get("path", ""))


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
                    await _send_problem(send, too_large, scope.get("path", ""))
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
            await _send_problem(send, busy, path, [(b"retry-after", b"1")])
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


class SecurityHeadersMiddleware:
    """Add `nosniff` to every response and a strict Content-Security-Policy to HTML."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                headers.append((b"x-content-type-options", b"nosniff"))
                if ctype.startswith(b"text/html"):
                    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                    headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class AccessLogMiddleware:
    """Log one line per request: as JSON with `json_format`, else a short text line."""

    def __init__(self, app: ASGIApp, *, json_format: bool) -> None:
        self.app = app
        self.json_format = json_format

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and log it once its response is over (or it failed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        sent = 0

        async def watched(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self._log(scope, status, sent, (time.perf_counter() - start) * 1000)

    def _log(self, scope: Scope, status: int, sent: int, ms: float) -> None:
        client = scope.get("client")
        addr = f"{client[0]}:{client[1]}" if client else "-"
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("path", "") + (f"?{query}" if query else "")
        if self.json_format:
            line = orjson.dumps(
                {
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "kind": "access",
                    "client": addr,
                    "method": scope.get("method"),
                    "path": path,
                    "status": status,
                    "bytes": sent,
                    "duration_ms": round(ms, 3),
                }
            ).decode()
        else:
            # The path arrives percent-decoded: a control character in it (a %0a) must not
            # start a log line of the client's choosing, nor reach a terminal (%1b).
            shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", path)
            line = f'{addr} "{scope.get("method")} {shown}" {status} {sent}B {ms:.1f}ms'
        _access.info(line)

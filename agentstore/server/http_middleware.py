"""Plain ASGI middleware of the HTTP door: token, allowed hosts, security headers, access
log; and the problem JSON they answer with. (The body limit, the requests in flight, HEAD
and the connection abort are in `http_flow`.)

They are pure ASGI (not Starlette's `BaseHTTPMiddleware`) so that a live follow streams
through them untouched.
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

import orjson

from agentstore.server.errors import (
    ForbiddenHostError,
    UnauthenticatedError,
    describe_error,
)

__all__ = [
    "ASGIApp",
    "AccessLogMiddleware",
    "AuthMiddleware",
    "LoopbackHostMiddleware",
    "Message",
    "Receive",
    "Scope",
    "SecurityHeadersMiddleware",
    "Send",
    "problem_body",
    "send_problem",
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
# What a terminal or a log viewer acts on (as `agentstore_cli.sanitize`): C0 and C1
# controls and DEL, the bidi controls, the line and paragraph separators (a new line to
# many viewers), and the invisible format characters (zero-width space, BOM, tags).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2066-\u206f\ufeff\U000e0000-\U000e007f]"
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _shown(text: str) -> str:
    """`text` with each unsafe character as a visible escape (`\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(_escaped, text)


def _json_escaped(match: re.Match[str]) -> str:
    """An unsafe character as JSON's `\\uXXXX` (a surrogate pair past the BMP)."""
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


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


async def send_problem(
    send: Send, exc: BaseException, path: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with the problem JSON of `exc` (and the `extra` headers)."""
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
        await send_problem(
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
        await send_problem(send, ForbiddenHostError(message), scope.get("path", ""))


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
            # orjson escapes C0 controls only: the rest as \\uXXXX, the same JSON.
            line = _UNSAFE.sub(_json_escaped, line)
        else:
            # The path arrives percent-decoded: a control character in it (a %0a, a %e2%80%a8)
            # must not start a log line of the client's choosing, nor reach a terminal (%1b,
            # %c2%9b). Nor may the address: behind a proxy, X-Forwarded-For's (latin-1).
            shown = _shown(path)
            line = f'{_shown(addr)} "{scope.get("method")} {shown}" {status} {sent}B {ms:.1f}ms'
        _access.info(line)

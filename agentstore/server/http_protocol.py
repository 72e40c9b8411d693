"""uvicorn's HTTP protocol, with a deadline for a request's headers, and a bounded close
of a connection whose request body was answered before it came whole.

Headers: uvicorn closes a keep-alive connection left idle after a response, but not one
that has sent no request yet, nor one that stopped in the middle of its headers: such
connections stayed open for good, before the app (and so the token check) ever saw them.
Anyone who could reach the port, without the token, could hold thousands and run the
server out of file descriptors (then the store cannot open its files either). Here a
request's headers must be whole within `header_timeout` seconds of the connection's
start, or of the first byte of the request; past it the connection is closed.

Unread bodies: when the answer (a 413 for a body over the limit, a 401, a 429, a 408)
begins before the request body has come whole, uvicorn kept the connection alive and
went on parsing the rest of the body to throw it away: for as long as the client cared
to send (a declared `Content-Length: 10000000000` was read to its end), and a client
that sent part of its body and then its next request was left waiting for good, its
request taken for body bytes, on a connection no timer watched any more. Now such an
answer says `Connection: close`, and the connection is closed after a lingering close
(as nginx's `lingering_close`, RFC 9112 section 9.6): the server half-closes its side
once the answer is out, then reads and throws away what the client still sends, for at
most `linger_seconds` and `linger_bytes`, or until the client closes. Closing at once
would be simpler, but a client still sending its body would then get a reset, and a
client that writes its whole request before reading gets EPIPE instead of the 413.

Only httptools: these promises are kept by this subclass of uvicorn's httptools protocol,
and uvicorn's other one (h11) keeps neither deadline. httptools is a dependency of the
server extra, so this module does not import without it, and `agentstore serve` refuses
to start (`ServerExtraMissingError`) instead of serving through h11 unguarded.

Stopping: uvicorn closes each idle connection and waits for all to be gone. Over TLS a
close waits for the client's own close_notify (asyncio: up to 30 s), so one keep-alive
client that did not answer held SIGTERM for 30 s. Once the server is stopping, a
connection still there `STOP_GRACE` seconds after its close is dropped (a request in
flight is not: only the closes that follow an answer, or an idle connection's).
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

# At import, not when called: without httptools the server must not start at all (see
# above), and runner.serve turns this ImportError into "needs the server extra".
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

__all__ = ["LINGER_BYTES", "LINGER_SECONDS", "STOP_GRACE", "http_protocol_class"]

LINGER_SECONDS = 5.0
"""Longest lingering close (nginx's `lingering_timeout` default); `header_timeout` if shorter."""
LINGER_BYTES = 64 * 1024 * 1024
"""Most bytes thrown away in a lingering close (`--max-body-bytes` if larger)."""
STOP_GRACE = 1.0
"""Seconds a closed connection may take to go once the server is stopping."""


def http_protocol_class(header_timeout: float, max_body_bytes: int = 0) -> Any:
    """Return uvicorn's httptools protocol class with the header deadline and the lingering
    close, for uvicorn's `Config(http=...)`."""
    linger_seconds = min(LINGER_SECONDS, header_timeout)
    linger_bytes = max(LINGER_BYTES, max_body_bytes)

    async def send_closing(cycle: RequestResponseCycle, message: Any) -> None:
        """uvicorn's `send`, but an answer that begins before the body is whole closes."""
        if message["type"] != "http.response.start" or cycle.response_started:
            await RequestResponseCycle.send(cycle, message)
            return
        if not cycle.more_body:  # the body is whole (or there is none): keep-alive as usual
            await RequestResponseCycle.send(cycle, message)
            return
        headers = list(message.get("headers", ()))
        if not any(name.lower() == b"connection" for name, _ in headers):
            headers.append((b"connection", b"close"))
        start: Any = {**message, "headers": headers}
        await RequestResponseCycle.send(cycle, start)
        # Kept "alive" for uvicorn, which would otherwise close the transport at the end of
        # the answer, unread body and all (a reset): the protocol closes it, lingering.
        cycle.keep_alive = True
        cycle.agentstore_linger = True  # type: ignore[attr-defined]

    class AgentStoreHttpProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _linger_timer: asyncio.TimerHandle | None = None
        _lingering: int | None = None  # bytes thrown away so far, while lingering
        _stopping = False
        _lost = False

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._lost = True
            self._disarm()
            if self._linger_timer is not None:
                self._linger_timer.cancel()
                self._linger_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._lingering is None:
                super().data_received(data)
                return
            # Lingering: the rest of the refused body, or whatever follows it, is thrown
            # away unparsed (never served as a request).
            self._lingering += len(data)
            if self._lingering > linger_bytes:
                self._end_linger()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            previous = self.cycle
            super().on_headers_complete()
            if self.cycle is not previous and self.cycle is not None:
                # An instance attribute, read by uvicorn when the request's task starts; a
                # bound method still, so `send.__self__.transport` finds the transport
                # (ConnectionAbortMiddleware).
                self.cycle.send = types.MethodType(send_closing, self.cycle)  # type: ignore[method-assign]

        def shutdown(self) -> None:
            """The server is stopping: uvicorn closes the connection if it is idle (else
            once its answer is out); drop it if it is not gone `STOP_GRACE` later."""
            self._stopping = True
            # Not closed twice: a second close() of asyncio's TLS transport forgets its
            # connection, and abort() then does nothing (Python 3.11).
            if not self.transport.is_closing():
                super().shutdown()
            self._drop_later()

        def _drop_later(self) -> None:
            if self._stopping and self.transport.is_closing():
                self.loop.call_later(STOP_GRACE, self._drop)

        def _drop(self) -> None:
            if not self._lost:
                self.transport.abort()

        def on_response_complete(self) -> None:
            cycle = self.cycle
            if cycle is None or not getattr(cycle, "agentstore_linger", False):
                super().on_response_complete()
                self._drop_later()
                return
            self.server_state.total_requests += 1
            if self._stopping and not self.transport.is_closing():  # no lingering: going
                self.transport.close()
            if self.transport.is_closing():
                self._drop_later()
                return
            if not cycle.more_body:  # the body came whole meanwhile: nothing to wait for
                self.transport.close()
                return
            self._lingering = 0
            if self.transport.can_write_eof():  # not over TLS: the client sees EOF at once
                self.transport.write_eof()
            self.flow.resume_reading()
            self._linger_timer = self.loop.call_later(linger_seconds, self._end_linger)

        def _end_linger(self) -> None:
            self._linger_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return AgentStoreHttpProtocol

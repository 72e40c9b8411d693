"""uvicorn's HTTP protocol, with a deadline for a request's headers.

uvicorn closes a keep-alive connection left idle after a response, but not one that has
sent no request yet, nor one that stopped in the middle of its headers: such connections
stayed open for good, before the app (and so the token check) ever saw them. Anyone who
could reach the port, without the token, could hold thousands and run the server out of
file descriptors (then the store cannot open its files either). Here a request's headers
must be whole within `header_timeout` seconds of the connection's start, or of the first
byte of the request; past it the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["protocol_with_header_timeout"]


def protocol_with_header_timeout(header_timeout: float) -> Any:
    """Return uvicorn's httptools protocol class with the deadline (None without httptools:
    uvicorn then picks its own)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

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
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

    return HeaderTimeoutProtocol

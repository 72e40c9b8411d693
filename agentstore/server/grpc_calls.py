"""What every rpc of both gRPC services shares: its error guard, the count of running rpc
bodies, and the decoding of a request that does not parse.

`RpcErrors()` turns whatever an rpc body raises into a gRPC status carrying the stable
agentstore code and details in the trailing metadata (the mapping is `describe_error`'s,
shared with the HTTP door); `Handlers` lets a stopping server wait for the bodies still
running; `decode_checked` keeps grpcio from answering an unparseable request itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import orjson
from google.protobuf.message import DecodeError

from agentstore import AgentStoreError, InvalidInputError
from agentstore.server.errors import PayloadTooLargeError, describe_error
from agentstore.server.grpc_wire import ERROR_CODE_KEY, ERROR_DETAILS_KEY

__all__ = ["UNDECODABLE", "Handlers", "RpcErrors", "decode_checked"]

_log = logging.getLogger("agentstore.server")


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

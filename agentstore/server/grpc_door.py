"""The gRPC door of `agentstore serve`: grpcio's asyncio server over `AgentStoreService`.

It serves the two services of `agentstore.proto` (`AgentStore` for agents in any
language, `Storage` for the Python remote backend), the standard gRPC health service
and server reflection, so `grpcurl` and other generic tools work without the .proto file.

```python
handle = await start_grpc_server(service, "127.0.0.1", 50051, tls=None, token=None)
...
await handle.stop(grace=10)
```

Security follows the server's rules: with a token, every call but the health check must
carry `authorization: Bearer <token>` (compared in constant time); with a certificate and
key, the port speaks TLS only. Limits: a message larger than `Limits.max_body_bytes` is
refused with `payload_too_large`, and one HTTP/2 connection carries at most
`Limits.max_streams_per_client` live follows (the service layer counts them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_api import AgentStoreServicer
from agentstore.server.grpc_calls import Handlers, decode_checked
from agentstore.server.grpc_storage import StorageServicer
from agentstore.server.grpc_wire import ERROR_CODE_KEY
from agentstore.server.service import AgentStoreService

__all__ = ["GrpcServerHandle", "start_grpc_server"]

_log = logging.getLogger("agentstore.server")
_HEALTH_PREFIX = "/grpc.health.v1.Health/"
_LAST_SENDS = 1.0  # seconds a stopping server lets calls whose bodies ended send their end
_SERVICES = ("agentstore.v1.AgentStore", "agentstore.v1.Storage")


@dataclass
class GrpcServerHandle:
    """A running gRPC server: where it listens, and how to stop it."""

    server: grpc.aio.Server
    port: int
    """The bound port (the real one when 0 was asked for)."""
    health: health.aio.HealthServicer
    service: AgentStoreService
    handlers: Handlers = field(default_factory=Handlers)
    """The rpc bodies running (a call can outlive its body: see `stop`)."""

    async def stop(self, grace: float | None = 10.0) -> None:
        """Stop accepting calls, let calls in flight finish for `grace` seconds, then end.

        Live follows end at once (the service is told the server is stopping); appends in
        flight finish within the grace period. Once no rpc body is running, a call still
        open waits only to send its status behind messages its client does not read (a
        follower that stopped reading): it is cancelled after `_LAST_SENDS` seconds, not
        waited for until the grace period ends.
        """
        self.service.begin_shutdown()
        for name in ("", *_SERVICES):
            await self._set_health(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        stopping = asyncio.ensure_future(self.server.stop(grace))
        if grace:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self.handlers.wait_idle()
            done, _ = await asyncio.wait({stopping}, timeout=min(grace, _LAST_SENDS))
            if not done:
                await self.server.stop(0)  # cancels the calls left (grpcio allows a 2nd stop)
        await stopping

    async def wait(self) -> None:
        """Return once the server has stopped."""
        await self.server.wait_for_termination()

    async def _set_health(self, name: str, status: Any) -> None:
        # The async flavour of the health servicer makes `set` a coroutine.
        result = self.health.set(name, status)
        if isinstance(result, Awaitable):
            await result


class _TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc] # grpc has no stubs
    """Refuse calls without `authorization: Bearer <token>` (health checks pass freely)."""

    def __init__(self, token: str) -> None:
        self._expected = f"bearer {token}".encode()
        self._refusal = grpc.unary_unary_rpc_method_handler(self._refuse)
        self._stream_refusal = grpc.unary_stream_rpc_method_handler(self._refuse)
        self._bidi_refusal = grpc.stream_stream_rpc_method_handler(self._refuse)
        self._upload_refusal = grpc.stream_unary_rpc_method_handler(self._refuse)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Pass the call on if it carries the token; otherwise answer UNAUTHENTICATED."""
        method: str = handler_call_details.method
        if method.startswith(_HEALTH_PREFIX) or self._authorised(handler_call_details):
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        # The refusal must have the method's shape, or the client reads garbage.
        if handler is not None and handler.request_streaming:
            return self._bidi_refusal if handler.response_streaming else self._upload_refusal
        if handler is not None and handler.response_streaming:
            return self._stream_refusal
        return self._refusal

    def _authorised(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                # The scheme is case-insensitive; the token itself is compared in constant time.
                given = given[:7].lower() + given[7:]
                return hmac.compare_digest(given, self._expected)
        return False

    async def _refuse(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        context.set_trailing_metadata(((ERROR_CODE_KEY, "unauthenticated"),))
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "a valid token is required: send the metadata 'authorization: Bearer <token>'",
        )


class _Checked:
    """What the generated `add_*_to_server` functions register into: each method handler
    goes to the server with `decode_checked`'s deserializer (no cost on a call)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: `add_registered_method_handlers` registers both ways."""

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        """Register `handlers` of `service` with requests that do not parse refused."""
        checked = {name: decode_checked(handler) for name, handler in handlers.items()}
        generic = grpc.method_handlers_generic_handler(service, checked)
        self._server.add_generic_rpc_handlers((generic,))
        self._server.add_registered_method_handlers(service, checked)


def _server_options(service: AgentStoreService) -> list[tuple[str, Any]]:
    limit = service.limits.max_body_bytes
    return [
        # Twice the limit at the transport, so the service can refuse a large message with
        # its own code (payload_too_large) instead of a bare RESOURCE_EXHAUSTED.
        ("grpc.max_receive_message_length", 2 * limit + 1024),
        ("grpc.max_send_message_length", 2 * limit + 1024),
        ("grpc.so_reuseport", 0),
        # Detect dead clients of long follows.
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def _credentials(cert: str | Path, key: str | Path) -> Any:
    # Read once at start, before the server takes calls (a blocking read is fine here).
    return grpc.ssl_server_credentials([(Path(key).read_bytes(), Path(cert).read_bytes())])


async def start_grpc_server(
    service: AgentStoreService,
    host: str,
    port: int,
    tls: tuple[str | Path, str | Path] | None = None,
    token: str | None = None,
) -> GrpcServerHandle:
    """Start the gRPC door on `host:port` (0: any free port) and return its handle.

    `tls` is `(certificate file, key file)` in PEM; `token` makes every call but the
    health check require `authorization: Bearer <token>`. Whether a token is required on
    a non-loopback address is decided by `agentstore serve`, not here.
    """
    interceptors = [_TokenInterceptor(token)] if token else []
    server = grpc.aio.server(interceptors=interceptors, options=_server_options(service))
    handlers = Handlers()
    api, storage = AgentStoreServicer(service, handlers), StorageServicer(service, handlers)
    pb_grpc.add_AgentStoreServicer_to_server(api, _Checked(server))
    pb_grpc.add_StorageServicer_to_server(storage, _Checked(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [pb.DESCRIPTOR.services_by_name[n.split(".")[-1]].full_name for n in _SERVICES]
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls is not None:
        bound = server.add_secure_port(address, _credentials(*tls))
    else:
        bound = server.add_insecure_port(address)
    await server.start()
    handle = GrpcServerHandle(server, bound, health_servicer, service, handlers)
    for name in ("", *_SERVICES):
        await handle._set_health(name, health_pb2.HealthCheckResponse.SERVING)
    _log.info("gRPC listening on %s:%d%s", host, bound, " (TLS)" if tls else "")
    return handle

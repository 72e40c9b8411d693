"""Run the real gRPC door on a free loopback port, in the test's event loop, and talk to it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import grpc
import orjson

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_door import GrpcServerHandle, start_grpc_server
from agentstore.server.grpc_wire import ERROR_CODE_KEY, ERROR_DETAILS_KEY
from agentstore.server.service import AgentStoreService, Limits


@dataclass
class Door:
    """A running gRPC door, its service, and a client channel with both stubs."""

    handle: GrpcServerHandle
    service: AgentStoreService
    channel: grpc.aio.Channel
    api: pb_grpc.AgentStoreStub
    storage: pb_grpc.StorageStub

    @property
    def target(self) -> str:
        """host:port of the door."""
        return f"127.0.0.1:{self.handle.port}"


@contextlib.asynccontextmanager
async def running_door(
    store: agentstore.Store | None = None,
    *,
    limits: Limits | None = None,
    token: str | None = None,
    tls: tuple[Path, Path] | None = None,
    channel_options: list[tuple[str, Any]] | None = None,
) -> AsyncIterator[Door]:
    """Serve `store` (a fresh in-memory one by default) and yield a connected `Door`."""
    owned = store is None
    store = store if store is not None else await agentstore.open(in_memory=True, pricing=False)
    service = AgentStoreService(store, limits or Limits())
    handle = await start_grpc_server(service, "127.0.0.1", 0, tls=tls, token=token)
    if tls is not None:
        creds = grpc.ssl_channel_credentials(root_certificates=tls[0].read_bytes())
        channel = grpc.aio.secure_channel(
            f"localhost:{handle.port}", creds, options=channel_options
        )
    else:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{handle.port}", options=channel_options)
    try:
        yield Door(
            handle, service, channel, pb_grpc.AgentStoreStub(channel), pb_grpc.StorageStub(channel)
        )
    finally:
        await channel.close()
        await handle.stop(grace=1)
        if owned:
            await store.close()


async def eventually(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Wait until `condition()` holds (the server's counters have no event to wait on)."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - polls a counter, bounded by the timeout
            await anyio.sleep(0.01)


async def read_to_end(call: Any) -> list[Any]:
    """Read a server stream until it ends; raise its error if it fails."""
    out = []
    while (msg := await call.read()) is not grpc.aio.EOF:
        out.append(msg)
    return out


def error_of(exc: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, dict[str, Any]]:
    """Return the status, the agentstore error code and the details a failed call carried."""
    trailing = dict(exc.trailing_metadata() or ())
    details = trailing.get(ERROR_DETAILS_KEY)
    return (
        exc.code(),
        str(trailing.get(ERROR_CODE_KEY, "")),
        orjson.loads(details) if details else {},
    )


def new_event(type_name: str, payload: Any, **fields: Any) -> pb.NewEvent:
    """Return an event to append, its payload encoded as JSON."""
    return pb.NewEvent(type=type_name, payload_json=orjson.dumps(payload), **fields)


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """Make a self-signed certificate for `localhost` with openssl; return (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key

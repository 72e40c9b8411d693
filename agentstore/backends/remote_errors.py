"""The errors of the remote backend's calls: what a failed gRPC call, a broken append
stream or one append's error answer means as an agentstore error (`remote.py`)."""

from __future__ import annotations

from typing import Any

import grpc
import orjson

from agentstore.errors import (
    AgentStoreError,
    StorageError,
    StorageUnavailableError,
    error_from_code,
)
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.errors import PayloadTooLargeError
from agentstore.server.grpc_wire import ERROR_CODE_KEY, ERROR_DETAILS_KEY

__all__ = ["answer_error", "rpc_error", "stream_error"]

_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}
# Codes that mean "the server is going away" to a client: retry later, elsewhere.
_GOING_AWAY = {"store_closed", "server_busy"}


def rpc_error(exc: grpc.aio.AioRpcError, address: str) -> AgentStoreError:
    """Turn a failed call into the agentstore error the server sent, or a transport one.

    Importing `agentstore.server.errors` (above) lets `error_from_code` rebuild its codes
    (`server_busy`, `payload_too_large`, `unauthenticated`) as the same classes.
    """
    trailing = dict(exc.trailing_metadata() or ())
    code = trailing.get(ERROR_CODE_KEY)
    message = exc.details() or exc.code().name
    raw = trailing.get(ERROR_DETAILS_KEY)
    return _rebuild(exc.code(), str(code) if code else "", message, raw, address)


def stream_error(exc: grpc.aio.AioRpcError, address: str) -> AgentStoreError:
    """Turn the end of an AppendStream call into the error of every append waiting on it.

    The server ends that call with an error only for a reason of its own (a token, a
    transport limit), which carries its code; any other failure (a killed server can
    surface as INTERNAL from grpc's core) means the connection broke: retry elsewhere.
    """
    error = rpc_error(exc, address)
    if type(error) is StorageError:
        return StorageUnavailableError(
            f"the agentstore server at {address} broke the append stream "
            f"({exc.code().name}: {exc.details()}); retrying is safe"
        )
    return error


def answer_error(err: pb.StreamError, address: str) -> AgentStoreError:
    """Turn the error answer of one append on an AppendStream into its agentstore error."""
    status = getattr(grpc.StatusCode, err.status, grpc.StatusCode.UNKNOWN)
    return _rebuild(status, err.code, err.message or err.status, err.details_json, address)


def _rebuild(
    status: grpc.StatusCode, code: str, message: str, raw: Any, address: str
) -> AgentStoreError:
    if code and code not in _GOING_AWAY:
        try:
            details = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            details = {}
        return error_from_code(code, message, details if isinstance(details, dict) else {})
    if status == grpc.StatusCode.RESOURCE_EXHAUSTED and not code:  # the transport's limit
        return PayloadTooLargeError(f"the agentstore server at {address} refused: {message}")
    if code or status in _TRANSIENT:
        return StorageUnavailableError(
            f"the agentstore server at {address} is unavailable ({message}); retrying is safe"
        )
    return StorageError(f"the agentstore server at {address} failed: {status.name}: {message}")

"""How an error crosses the wire: its stable code, HTTP status and gRPC status, in one place.

Both doors call `describe_error()`; neither decides a status itself. An exception that is
not an `AgentStoreError` is a bug of ours: it is logged with its traceback on the server
and sent as `internal_error` with no detail, never as a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentstore import AgentStoreError

__all__ = [
    "ErrorInfo",
    "ForbiddenHostError",
    "PayloadTooLargeError",
    "RequestTimeoutError",
    "ServerBusyError",
    "UnauthenticatedError",
    "describe_error",
    "error_code",
]


class ServerBusyError(AgentStoreError):
    """The server is at a limit (open live follows) or shutting down; retry later."""

    code: ClassVar[str] = "server_busy"


class PayloadTooLargeError(AgentStoreError):
    """A request body or message is larger than the server accepts."""

    code: ClassVar[str] = "payload_too_large"


class RequestTimeoutError(AgentStoreError):
    """A request body stopped arriving before it was whole (HTTP's --body-timeout)."""

    code: ClassVar[str] = "request_timeout"


class UnauthenticatedError(AgentStoreError):
    """The request carries no token, or the wrong one."""

    code: ClassVar[str] = "unauthenticated"


class ForbiddenHostError(AgentStoreError):
    """A request to a server without a token named a host other than this machine."""

    code: ClassVar[str] = "forbidden_host"


@dataclass(frozen=True)
class ErrorInfo:
    """What a door sends for an error: stable `code`, statuses, message and fields."""

    code: str
    http_status: int
    grpc_status: str
    """The name of a `grpc.StatusCode` member (kept a string: no grpc import here)."""
    message: str
    details: dict[str, Any] = field(default_factory=dict)


# code -> (HTTP status, gRPC status). A subclass without an entry takes its parent's.
_STATUS: dict[str, tuple[int, str]] = {
    "agentstore_error": (500, "INTERNAL"),
    "invalid_input": (400, "INVALID_ARGUMENT"),
    "invalid_session_id": (400, "INVALID_ARGUMENT"),
    "invalid_event": (400, "INVALID_ARGUMENT"),
    "ambiguous_session": (400, "INVALID_ARGUMENT"),
    "session_not_found": (404, "NOT_FOUND"),
    "session_exists": (409, "ALREADY_EXISTS"),
    "concurrency_conflict": (409, "ABORTED"),
    "budget_exceeded": (409, "FAILED_PRECONDITION"),
    "store_closed": (503, "UNAVAILABLE"),
    "store_locked": (503, "UNAVAILABLE"),
    "storage_unavailable": (503, "UNAVAILABLE"),
    "reducer_error": (500, "INTERNAL"),
    "storage_error": (500, "INTERNAL"),
    "corrupt_log": (500, "DATA_LOSS"),
    "session_changed": (409, "ABORTED"),
    "backend_unavailable": (500, "INTERNAL"),
    "server_busy": (429, "RESOURCE_EXHAUSTED"),
    "payload_too_large": (413, "RESOURCE_EXHAUSTED"),
    "request_timeout": (408, "DEADLINE_EXCEEDED"),
    "unauthenticated": (401, "UNAUTHENTICATED"),
    "forbidden_host": (403, "PERMISSION_DENIED"),
    "internal_error": (500, "INTERNAL"),
}

# Fields never sent: a server does not tell clients its file system layout.
_PRIVATE_DETAILS = frozenset(("path",))


def error_code(cls: type[BaseException]) -> str:
    """Return the stable code of an error class (derived from its name if it has none)."""
    code = getattr(cls, "code", None)
    if isinstance(code, str) and code:
        return code
    name = cls.__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() or "agentstore_error"


def describe_error(exc: BaseException) -> ErrorInfo:
    """Return how `exc` crosses the wire; anything not ours becomes `internal_error`."""
    if not isinstance(exc, AgentStoreError):
        return ErrorInfo("internal_error", 500, "INTERNAL", "internal server error")
    code = error_code(type(exc))
    status = None
    for cls in type(exc).__mro__:
        if isinstance(cls, type) and issubclass(cls, AgentStoreError):
            status = _STATUS.get(error_code(cls))
            if status is not None:
                break
    http_status, grpc_status = status or _STATUS["agentstore_error"]
    wire = exc.wire_details() if hasattr(exc, "wire_details") else {}
    details = {k: v for k, v in wire.items() if k not in _PRIVATE_DETAILS}
    return ErrorInfo(code, http_status, grpc_status, _without_root(exc), details)


def _without_root(exc: AgentStoreError) -> str:
    """The message, with a file it names (`path`: `DIR/events/ID.jsonl`) named relative to
    the data directory (`events/ID.jsonl`), as a listing's `skipped` names them: the
    `path` field is left out, and the message must not give it away either."""
    message = str(exc)
    path = getattr(exc, "path", None)
    if isinstance(path, str) and path:
        root = os.path.dirname(os.path.dirname(path))  # DIR of DIR/events/ID.jsonl
        if root not in ("", "."):
            message = message.replace(f"{root}{os.sep}", "")
    return message

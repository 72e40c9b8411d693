"""The exceptions agentstore raises.

Every error that crosses the public API is an `AgentStoreError`; lower-level errors
(`OSError`, `orjson.JSONDecodeError`, pydantic's `ValidationError`) are caught at the
boundary and re-raised as the most specific class below, chained with `from exc`::

    AgentStoreError
    ├── InvalidInputError (also ValueError)
    │   ├── InvalidSessionIdError
    │   ├── InvalidEventError
    │   └── AmbiguousSessionError
    ├── SessionNotFoundError (also LookupError)
    ├── SessionExistsError
    ├── ConcurrencyError
    ├── BudgetExceededError
    ├── StoreClosedError
    ├── StoreLockedError
    ├── ReducerError
    ├── BackendUnavailableError (also ImportError: a missing extra or unknown scheme)
    └── StorageError
        ├── CorruptLogError
        ├── SessionChangedError (changed under the store by another program: retry)
        └── StorageUnavailableError (transient: retrying is safe)

Every class carries a stable machine-readable `code` (``"session_not_found"``, ...) that a
server sends over the wire and a client turns back into the same class with
`error_from_code()`.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AgentStoreError",
    "BackendUnavailableError",
    "AmbiguousSessionError",
    "BudgetExceededError",
    "ConcurrencyError",
    "CorruptLogError",
    "InvalidEventError",
    "InvalidInputError",
    "InvalidSessionIdError",
    "ReducerError",
    "SessionExistsError",
    "SessionChangedError",
    "SessionNotFoundError",
    "StorageError",
    "StorageUnavailableError",
    "StoreClosedError",
    "StoreLockedError",
    "error_from_code",
]


class AgentStoreError(Exception):
    """Base class of every error agentstore raises."""

    code: ClassVar[str] = "agentstore_error"
    """A stable, machine-readable name of the error class, sent over the wire."""

    def wire_details(self) -> dict[str, Any]:
        """Return the error's structured fields (JSON values) to send with its `code`."""
        return {
            name: value for name in _WIRE_FIELDS if (value := getattr(self, name, None)) is not None
        }


class InvalidInputError(AgentStoreError, ValueError):
    """An argument was rejected before anything was written."""

    code: ClassVar[str] = "invalid_input"


class InvalidSessionIdError(InvalidInputError):
    """A session id is empty, too long, or could escape the data directory."""

    code: ClassVar[str] = "invalid_session_id"


class InvalidEventError(InvalidInputError):
    """An event cannot be stored: bad type name, payload not JSON, bad metadata."""

    code: ClassVar[str] = "invalid_event"


class AmbiguousSessionError(InvalidInputError):
    """A session id prefix matches more than one session; `candidates` lists them."""

    code: ClassVar[str] = "ambiguous_session"

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:10]) + (" ..." if len(candidates) > 10 else "")
        super().__init__(
            f"session prefix {prefix!r} is ambiguous: it matches {len(candidates)} sessions "
            f"({shown}); give more characters"
        )
        self.prefix = prefix
        self.candidates = candidates


class SessionNotFoundError(AgentStoreError, LookupError):
    """No session with this id exists (or it was deleted)."""

    code: ClassVar[str] = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} not found")
        self.session_id = session_id


class SessionExistsError(AgentStoreError):
    """A session with this id already exists."""

    code: ClassVar[str] = "session_exists"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} already exists")
        self.session_id = session_id


class ConcurrencyError(AgentStoreError):
    """An append's `expected_seq` did not match the session's last sequence number."""

    code: ClassVar[str] = "concurrency_conflict"

    def __init__(self, session_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"session {session_id!r}: expected last sequence number {expected}, "
            f"but it is {actual}; re-read the session and retry"
        )
        self.session_id = session_id
        self.expected = expected
        self.actual = actual


class BudgetExceededError(AgentStoreError):
    """A session is at or over its budget; the paid call was not recorded."""

    code: ClassVar[str] = "budget_exceeded"


class StoreClosedError(AgentStoreError):
    """The store was used after `close()`."""

    code: ClassVar[str] = "store_closed"


class StoreLockedError(AgentStoreError):
    """The data directory is locked or not writable by this process."""

    code: ClassVar[str] = "store_locked"


class ReducerError(AgentStoreError):
    """The reducer raised while folding an event into the state."""

    code: ClassVar[str] = "reducer_error"


class StorageError(AgentStoreError):
    """The storage backend failed (I/O error, disk full, unreadable file)."""

    code: ClassVar[str] = "storage_error"


class CorruptLogError(StorageError):
    """An event log holds a line that is not a valid event.

    `path` and `line` (1-based) say where.
    """

    code: ClassVar[str] = "corrupt_log"

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}: " if path is not None and line is not None else ""
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class SessionChangedError(StorageError):
    """A session's stored log changed under the store in a way appends cannot make (replaced
    by another program, restored from a backup, cut shorter).

    The backend dropped its view of it and the store what it had cached of it; nothing was
    done. Retrying reads the log as it now is.
    """

    code: ClassVar[str] = "session_changed"


class StorageUnavailableError(StorageError):
    """The storage could not be reached (connection lost, server down, failover).

    Transient: the operation may or may not have been applied. Retrying the same append is
    safe, because events carry ids and an id already stored is not written again.
    """

    code: ClassVar[str] = "storage_unavailable"


class BackendUnavailableError(AgentStoreError, ImportError):
    """No backend can open this target: an unknown scheme, or its extra is not installed."""

    code: ClassVar[str] = "backend_unavailable"


# Structured fields some errors carry; sent with the code, restored by `error_from_code`.
_WIRE_FIELDS = ("session_id", "expected", "actual", "prefix", "candidates", "path", "line")


def _all_classes() -> dict[str, type[AgentStoreError]]:
    found: dict[str, type[AgentStoreError]] = {}
    pending: list[type[AgentStoreError]] = [AgentStoreError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from_code(
    code: str, message: str, details: dict[str, Any] | None = None
) -> AgentStoreError:
    """Rebuild the error a server sent: the class named by `code` (or `AgentStoreError`).

    The message is kept as sent and the structured fields (`session_id`, `expected`, ...)
    are set as attributes, so `except ConcurrencyError as exc: exc.actual` works on a client.
    """
    cls = _all_classes().get(code, AgentStoreError)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    for name, value in (details or {}).items():
        if name in _WIRE_FIELDS:
            setattr(exc, name, value)
    return exc

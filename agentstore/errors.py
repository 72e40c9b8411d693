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
    └── StorageError
        └── CorruptLogError
"""

from __future__ import annotations

__all__ = [
    "AgentStoreError",
    "AmbiguousSessionError",
    "BudgetExceededError",
    "ConcurrencyError",
    "CorruptLogError",
    "InvalidEventError",
    "InvalidInputError",
    "InvalidSessionIdError",
    "ReducerError",
    "SessionExistsError",
    "SessionNotFoundError",
    "StorageError",
    "StoreClosedError",
    "StoreLockedError",
]


class AgentStoreError(Exception):
    """Base class of every error agentstore raises."""


class InvalidInputError(AgentStoreError, ValueError):
    """An argument was rejected before anything was written."""


class InvalidSessionIdError(InvalidInputError):
    """A session id is empty, too long, or could escape the data directory."""


class InvalidEventError(InvalidInputError):
    """An event cannot be stored: bad type name, payload not JSON, bad metadata."""


class AmbiguousSessionError(InvalidInputError):
    """A session id prefix matches more than one session; `candidates` lists them."""

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

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} not found")
        self.session_id = session_id


class SessionExistsError(AgentStoreError):
    """A session with this id already exists."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id!r} already exists")
        self.session_id = session_id


class ConcurrencyError(AgentStoreError):
    """An append's `expected_seq` did not match the session's last sequence number."""

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


class StoreClosedError(AgentStoreError):
    """The store was used after `close()`."""


class StoreLockedError(AgentStoreError):
    """The data directory is locked or not writable by this process."""


class ReducerError(AgentStoreError):
    """The reducer raised while folding an event into the state."""


class StorageError(AgentStoreError):
    """The storage backend failed (I/O error, disk full, unreadable file)."""


class CorruptLogError(StorageError):
    """An event log holds a line that is not a valid event.

    `path` and `line` (1-based) say where.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}: " if path is not None and line is not None else ""
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line

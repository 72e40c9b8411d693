"""The asyncpg import, and the translation of its errors into agentstore's.

Every module of the PostgreSQL backend imports asyncpg from here, so a missing extra gives
one clear `BackendUnavailableError` and `import agentstore` never imports asyncpg.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agentstore.errors import (
    AgentStoreError,
    InvalidEventError,
    InvalidInputError,
    StorageError,
    StorageUnavailableError,
)

try:
    import asyncpg  # type: ignore[import-untyped]
    import asyncpg.exceptions as pgexc  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised in a venv without the extra
    from agentstore.errors import BackendUnavailableError

    raise BackendUnavailableError(
        "the PostgreSQL backend needs asyncpg: pip install 'agentstore[postgres]'"
    ) from exc

__all__ = [
    "CAUGHT",
    "CONNECTION_ERRORS",
    "asyncpg",
    "pgexc",
    "refused",
    "translate",
    "translated",
]

# Errors after which the connection (or the server behind it) is gone or refusing work for
# now: the statement may or may not have been applied, and a retry with the same event ids
# is safe.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    asyncpg.InterfaceError,  # includes "connection is closed" and pool errors
    pgexc.PostgresConnectionError,  # class 08
    pgexc.OperatorInterventionError,  # class 57: terminated, shutdown, cancelled, timeout
    pgexc.InsufficientResourcesError,  # class 53: too many connections, disk full
    pgexc.CannotConnectNowError,
    pgexc.InternalClientError,  # a protocol left mid-message by a dropped connection
)
_CAUGHT = (asyncpg.PostgresError, *_UNAVAILABLE)

CAUGHT: tuple[type[BaseException], ...] = _CAUGHT
"""The errors `translated` turns into agentstore's (with `translate`): for a hot path that
catches them itself (`except CAUGHT as exc:`; an `AgentStoreError` among them goes on as
it is)."""

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    pgexc.PostgresConnectionError,
    pgexc.OperatorInterventionError,
    pgexc.InternalClientError,
)
"""Errors after which a connection must not be used again."""


def refused(exc: BaseException) -> bool:
    """Tell whether the server refused a statement (it ran and failed: nothing applied),
    as opposed to a connection or server that is gone or busy (applied or not: unknown)."""
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(exc, _UNAVAILABLE)


def translate(exc: BaseException, what: str) -> AgentStoreError:
    """Return the agentstore error for a driver error raised while doing `what`."""
    if isinstance(exc, AgentStoreError):
        return exc
    if isinstance(exc, pgexc.ReadOnlySQLTransactionError):
        return StorageError(
            f"{what}: the server is a read-only replica (hot standby); open the primary "
            "for writes and pass the replica as read_url"
        )
    if isinstance(exc, pgexc.QueryCanceledError):
        return StorageUnavailableError(
            f"{what}: cancelled on the server (statement_timeout reached or cancelled); "
            "retrying is safe"
        )
    if isinstance(exc, pgexc.UntranslatableCharacterError | pgexc.InvalidTextRepresentationError):
        # jsonb refuses "\u0000" in strings: refused before anything was written.
        return InvalidEventError(f"{what}: PostgreSQL cannot store this JSON value: {exc}")
    if isinstance(exc, pgexc.CharacterNotInRepertoireError):
        # A NUL in a text column (an event id, a session name): the statement, and with it
        # everything it would have written, is refused.
        return InvalidInputError(
            f"{what}: PostgreSQL text cannot hold the NUL character (\\u0000): {exc}"
        )
    if isinstance(exc, TimeoutError):
        return StorageUnavailableError(
            f"{what}: no answer in time (no free pool connection within pool_timeout, or "
            "the server is too slow or away); retrying is safe"
        )
    if isinstance(exc, _UNAVAILABLE):
        detail = str(exc) or type(exc).__name__
        return StorageUnavailableError(
            f"{what}: PostgreSQL is unreachable ({detail}); retrying is safe"
        )
    return StorageError(f"{what}: {type(exc).__name__}: {exc}")


class translated:  # lower case: used as `async with translated(...)`, like contextlib's
    """Re-raise driver and socket errors in the block as agentstore errors, chained.

    `async with translated("reading session 'x'"):` runs its block and turns an asyncpg
    or socket error into the agentstore error `translate` gives for it. A class rather
    than an `@asynccontextmanager`: it is on every statement's path, and a generator-based
    manager costs an async generator (and the loop's bookkeeping of it) per use.
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, exc: Any, tb: Any) -> None:
        # Returns None, never True: an exception of the block always goes on (typed so,
        # type checkers know the code after the block is reached only without one).
        if exc is not None and not isinstance(exc, AgentStoreError) and isinstance(exc, _CAUGHT):
            raise translate(exc, self.what) from exc

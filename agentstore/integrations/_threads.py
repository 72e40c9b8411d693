"""One agentstore session per framework thread: the id mapping and get-or-create.

Shared by the LangChain callback handler and the LangGraph checkpointer, so that a
thread's checkpoints and its LLM and tool calls land in the same session. Framework-free
(only agentstore is imported), so it is safe to import without any extra.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Mapping
from typing import Protocol

from agentstore.errors import InvalidInputError, SessionExistsError, SessionNotFoundError
from agentstore.session import Session, validate_session_id

__all__ = ["SessionOpener", "ensure_session", "mapped_session_id", "thread_session_id"]

_HASHED_PREFIX = "thread-"


def thread_session_id(thread_id: object) -> str:
    """Return the agentstore session id that records the thread `thread_id`.

    A thread id that is a valid session id (letters, digits, `_ - .`, at most 128
    characters, e.g. a UUID) is used as it is, so `agentstore replay <thread_id>` works.
    Any other thread id (`"user:42"`) maps to `thread-` and 40 hex digits of its SHA-256,
    the same on every machine; the original id is kept in the session's labels.
    """
    if isinstance(thread_id, bool) or not isinstance(thread_id, str | int):
        raise InvalidInputError(
            f"a thread id must be a string (or an int), not {type(thread_id).__name__}: "
            'pass config={"configurable": {"thread_id": "..."}}'
        )
    text = str(thread_id)
    if not text:
        raise InvalidInputError("a thread id must not be empty")
    return mapped_session_id(text, _HASHED_PREFIX)


def mapped_session_id(name: str, prefix: str) -> str:
    """Return `name` if it is a valid session id, else `prefix` + 40 hex digits of its SHA-256."""
    try:
        return validate_session_id(name)
    except InvalidInputError:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return f"{prefix}{digest}"


class SessionOpener(Protocol):
    """The part of `agentstore.Store` needed to find or create a session."""

    def get_session(self, session_id: str) -> Awaitable[Session]: ...

    def create_session(
        self,
        *,
        name: str | None = None,
        session_id: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Awaitable[Session]: ...


async def ensure_session(
    store: SessionOpener, session_id: str, *, name: str, labels: Mapping[str, str]
) -> None:
    """Create the session `session_id` unless it exists (safe when several race for it)."""
    try:
        await store.get_session(session_id)
        return
    except SessionNotFoundError:
        pass
    # Another task or process may create it first: that is the one we want.
    with contextlib.suppress(SessionExistsError):
        await store.create_session(session_id=session_id, name=name, labels=labels)

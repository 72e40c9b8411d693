"""The append protocol the integrations record through: a store that makes sessions on demand."""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import TYPE_CHECKING

import anyio

from agentstore.errors import InvalidInputError, SessionExistsError, SessionNotFoundError
from agentstore.events import Event
from agentstore.helpers import error

if TYPE_CHECKING:
    from agentstore import Store

__all__ = ["SessionAppender", "check_async_store"]

logger = logging.getLogger("agentstore")


def check_async_store(store: object) -> None:
    """Refuse anything but an async `Store` (a `SyncStore` would fail on the first await)."""
    if not inspect.iscoroutinefunction(getattr(store, "append", None)):
        raise InvalidInputError(
            f"the framework integrations record through an async Store "
            f"(agentstore.open()), not {type(store).__name__}"
        )


class SessionAppender:
    """`append(session_id, event)` on a store, creating a missing session on first use.

    A framework names its sessions itself (a conversation id, a session id the user
    chose), so the first event of a run may be the first of its session. It is what
    `agentstore.tracking`'s trackers append through.
    """

    def __init__(self, store: Store, labels: dict[str, str]) -> None:
        check_async_store(store)
        self.store = store
        """The store appended to."""
        self._labels = labels

    async def ensure_session(self, session_id: str) -> None:
        """Create the session unless it exists (another writer may create it meanwhile)."""
        with contextlib.suppress(SessionExistsError):
            await self.store.create_session(session_id=session_id, labels=dict(self._labels))

    async def append(self, session_id: str, event: Event) -> Event:
        """Append `event`, creating the session first if it does not exist."""
        try:
            return await self.store.append(session_id, event)
        except SessionNotFoundError:
            await self.ensure_session(session_id)
            return await self.store.append(session_id, event)

    async def append_many(self, session_id: str, events: list[Event]) -> list[Event]:
        """Append `events` all or nothing, creating the session first if needed."""
        try:
            return await self.store.append_many(session_id, events)
        except SessionNotFoundError:
            await self.ensure_session(session_id)
            return await self.store.append_many(session_id, events)

    async def record_error(self, session_id: str, exc: BaseException) -> None:
        """Append `exc` as an `error` event; never raise (the caller re-raises `exc`).

        Written even when the run was cancelled, as `agentstore.tracking` does; if the
        store refuses it (closed, unreachable), the failure is logged, so the exception
        the caller is about to re-raise is never hidden behind ours.
        """
        await self.record(session_id, error(exc), "the error of")

    async def record(self, session_id: str, event: Event, what: str) -> None:
        """Append `event` on a run's way out (see `record_error`): shielded from the run's
        cancellation, and a failure logged ("could not record <what> a run ..."), never
        raised."""
        try:
            with anyio.CancelScope(shield=True):
                await self.append(session_id, event)
        except Exception as failure:
            logger.warning("could not record %s a run in session %s: %r", what, session_id, failure)

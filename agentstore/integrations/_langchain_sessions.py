"""Where `AgentStoreCallbackHandler`'s events are written: each session made on first use
(and made again if it was deleted), and every store call sent to the event loop the store
belongs to. Framework-free: only agentstore is imported."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agentstore.errors import InvalidInputError, SessionNotFoundError
from agentstore.events import Event
from agentstore.integrations._threads import ensure_session

if TYPE_CHECKING:
    from agentstore.store import Store

__all__ = ["SessionWriter"]


class SessionWriter:
    """Appends to a store's sessions, making each on first use, from the store's loop."""

    def __init__(self, store: Store) -> None:
        """Write to `store`; its loop is the running one, or the first one used."""
        self.store = store
        """The store the events are appended to."""
        # Sessions made or found so far, with the name and labels to make them again.
        self._ready: dict[str, tuple[str, dict[str, str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # no running loop: set on first use
            self._loop = asyncio.get_running_loop()

    async def ensure(self, sid: str, name: str, labels: dict[str, str]) -> None:
        """Make the session `sid` (with `name` and `labels`) unless it was made or found."""
        if sid not in self._ready:
            await self._on_home(lambda: ensure_session(self.store, sid, name=name, labels=labels))
            self._ready[sid] = (name, labels)

    async def append(self, session_id: str, event: Event) -> None:
        """Append `event` to the session, making it again if it was deleted since."""
        try:
            await self._on_home(lambda: self.store.append(session_id, event))
        except SessionNotFoundError:
            # Deleted since first use (e.g. `AgentStoreSaver.adelete_thread`): start it again.
            name, labels = self._ready.pop(session_id, ("langchain", {"framework": "langchain"}))
            await self.ensure(session_id, name, labels)
            await self._on_home(lambda: self.store.append(session_id, event))

    async def _on_home(self, call: Callable[[], Awaitable[Any]]) -> Any:
        # LangChain runs the callbacks of a sync tool (ToolNode runs those in a worker
        # thread) in a fresh event loop of that thread; the store belongs to the loop the
        # run started in, so the store call is sent back there.
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if loop is self._loop:
            return await call()
        home = self._loop
        if home.is_closed() or not home.is_running():
            raise InvalidInputError(
                "AgentStoreCallbackHandler records async runs: use ainvoke/astream, in the "
                "event loop the store was opened in"
            )

        async def run() -> Any:
            return await call()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), home))

"""Appends on the caller's thread, for a `SyncStore` over a backend that can (the file one).

A `SyncStore` hands each call to its store's event loop and waits for the answer. An append
to a backend with `Backend.appends_on_caller_thread` need not: the caller's thread blocks
anyway, so it validates, appends and waits for the sync itself (`append_blocking`), and
hands the loop only what lives there: folding into the state cache, telling listeners, and
the snapshot policy. The hand-over does not wait: the append is queued before it returns,
and every call through the portal folds the queue first (`after_drain`), so each thread
reads its own writes. The loop is woken for the queue (`call_soon_threadsafe`, queued
ahead of any later portal call) only when something must not wait for a call: listeners,
a snapshot that is due, or `_QUEUED` appends; a wake-up costs a syscall and two trips of
the GIL, more than the append's own work on a busy machine.

Kept on the loop (the caller gets None and uses the portal): batches with an
`llm_request` (a budget is checked against the state under the session lock) and empty
batches. Appends of several threads to one session may be handed over out of order; each
round sorts what it takes by sequence number, and `StateKeeper.fold_appended` drops the
cached state if it still meets one out of order (rebuilt from the log: correct, slower).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from agentstore.backends.base import AppendResult, PendingEvent
from agentstore.events import Event, EventType
from agentstore.session import validate_session_id
from agentstore.store.facade import Store
from agentstore.store.states import LOST_VIEW
from agentstore.store.validate import check_count, prepare

if TYPE_CHECKING:  # asyncio itself is not imported by `import agentstore` (it loads fcntl)
    import asyncio

__all__ = ["CallerThreadAppends"]

logger = logging.getLogger("agentstore")

_Handed = tuple[str, AppendResult, Sequence[PendingEvent]]
T = TypeVar("T")

_QUEUED = 64
"""Appends queued before the loop is woken to fold them even though nothing asks yet."""


class CallerThreadAppends:
    """Appends to a `Store` from the threads of its `SyncStore`, without its loop's help.

    Make one with `for_store` on the store's loop; call `append` from any other thread.
    """

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        if not type(store.backend).appends_on_caller_thread:
            raise TypeError(f"{type(store.backend).__name__} cannot append on the caller's thread")
        self._store = store
        self._loop = loop
        self._mutex = threading.Lock()
        # What the loop has yet to fold, and whether a drain is scheduled to take it.
        self._handed: list[_Handed] = []
        self._scheduled = False
        # Sessions whose append failed because the backend lost its view of them (deleted,
        # made anew or restored elsewhere): what is cached of them is dropped, as
        # `Writer.append` does, before anything handed with them is folded.
        self._forget: set[str] = set()

    @classmethod
    async def for_store(cls, store: Store) -> CallerThreadAppends | None:
        """Make one for `store` if its backend can (call it on the store's loop), else None."""
        if not type(store.backend).appends_on_caller_thread:
            return None
        import asyncio  # loaded by the running loop already; `import agentstore` must not

        return cls(store, asyncio.get_running_loop())

    def append(
        self, session_id: str, events: Sequence[Event], expected_seq: int | None
    ) -> list[Event] | None:
        """Append on this thread; return the stored events, or None: use the loop instead.

        The checks and errors are those of `Store.append_many`, in the same order.
        """
        for event in events:
            if isinstance(event, Event) and event.type == EventType.LLM_REQUEST:
                return None  # maybe paid: the budget needs the session lock
        store = self._store
        store._check_open()
        sid = validate_session_id(session_id)
        batch = [prepare(event, store._pricer) for event in events]
        if expected_seq is not None:
            check_count("expected_seq", expected_seq)
        if not batch:
            return None
        try:
            result = store.backend.append_blocking(sid, batch, expected_seq)
        except LOST_VIEW:
            with self._mutex:
                self._forget.add(sid)
            raise
        if result.written:
            self._hand_over((sid, result, batch))
        return result.events

    def _hand_over(self, handed: _Handed) -> None:
        # Waking the loop costs more than the append's own work on a busy machine (a
        # syscall, and the GIL handed to the loop's thread and back): wake it only for what
        # must not wait (listeners, a snapshot) or when enough is queued. The rest is
        # drained first thing in the next call through the loop (`after_drain`).
        urgent = bool(self._store._writer.listeners) or self._store._states.snapshot_due(handed[1])
        with self._mutex:
            self._handed.append(handed)
            if self._scheduled or (not urgent and len(self._handed) < _QUEUED):
                return
            self._scheduled = True
        # RuntimeError: the loop is gone, the store closed after this append was made
        # durable. It stands (acknowledged); there is no cache or listener left to tell.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._drain)

    @property
    def pending(self) -> bool:
        """True when appends are waiting to be folded, or sessions to be forgotten (read
        from the appending thread): the next call must not answer from a stale cache."""
        return bool(self._handed or self._forget)

    async def after_drain(self, func: Callable[[], Awaitable[T]]) -> T:
        """Fold what is pending, then run `func` (on the loop): how a call sees the appends."""
        self._drain()
        return await func()

    def _drain(self) -> None:
        """Fold, tell and snapshot what threads appended (on the loop's thread)."""
        with self._mutex:
            handed, self._handed = self._handed, []
            forget, self._forget = self._forget, set()
            self._scheduled = False
        if self._store.closed:
            return
        for sid in forget:  # what was handed with them folds into nothing: rebuilt on read
            self._store._states.forget(sid)
        if not handed:
            return
        if len(handed) > 1:
            handed.sort(key=lambda h: h[1].previous_seq)  # per session: in sequence order
        writer = self._store._writer
        for sid, result, batch in handed:
            try:
                due, snapshot = writer._fold(sid, result, batch)
                if writer.listeners:
                    writer._tell_listeners(result)
            except Exception:
                # The events are stored and acknowledged; only the cache is in doubt.
                logger.exception("folding an append of session %s failed; state rebuilt", sid)
                self._store._states.forget(sid)
                continue
            if due:
                self._store._snapshots.start(sid, result.last_seq, snapshot, self._loop)

    async def settle(self) -> None:
        """Fold what is pending and wait for the snapshot writes (before the store closes)."""
        self._drain()
        await self._store._snapshots.settle_all()

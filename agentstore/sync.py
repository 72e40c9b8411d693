"""`SyncStore`: the async `Store`, blocking, for sync agent frameworks and scripts.

```python
import agentstore

with agentstore.open_sync("./agent-data") as store:
    session = store.create_session(name="my-agent")
    store.append(session.id, agentstore.user_message("hi"))
    with store.track_tool(session.id, "search_flights", {"to": "MUC"}) as call:
        call.result = search_flights(to="MUC")
    print(store.get_state(session.id).tool_calls)
```

Each `SyncStore` runs its `Store` on an event loop in a thread of its own (anyio's
blocking portal); every method hands its call to that loop and waits for the result.
That makes a `SyncStore` safe to use from many threads at once: the calls are queued on
one loop, where the store keeps sequence numbers in order exactly as it does for tasks.
Appends on the file backend run on the calling thread instead (it blocks anyway; see
`agentstore.store.blocking`). Do not call a `SyncStore` from async code (it would block
that event loop): use `Store`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, ParamSpec, Self, TypeVar

from agentstore import tracking
from agentstore._open import DEFAULT_DATA_DIR
from agentstore._open import open as _open_async
from agentstore._portal import LIVE, start_portal
from agentstore.backends.base import UNSET, Backend, SessionPage
from agentstore.backends.registry import Durability
from agentstore.errors import StoreClosedError
from agentstore.events import Event
from agentstore.pricing import Pricer
from agentstore.session import PrunedSession, Session
from agentstore.state import Budget, Reducer
from agentstore.store import Store
from agentstore.store.blocking import CallerThreadAppends
from agentstore.sync_reads import SyncReads

__all__ = ["SyncStore", "open_sync"]

P = ParamSpec("P")
T = TypeVar("T")


class SyncStore(SyncReads):
    """A blocking twin of `Store`, safe to call from many threads at once.

    Make one with `agentstore.open_sync(...)` (same arguments as `agentstore.open`) or
    from a `Store` that is not used elsewhere: `SyncStore(agentstore.open(...))`. Use it
    as a context manager or call `close()`. The methods are those of `Store`, blocking.
    """

    def __init__(self, store: Store) -> None:
        if not isinstance(store, Store):
            raise TypeError(f"SyncStore wraps an agentstore.Store, not {type(store).__name__}")
        self._store = store
        self._close_lock = threading.Lock()
        self._closed = False
        # Appends on the callers' threads, when the backend can (None: all through the loop).
        self._inline: CallerThreadAppends | None = None
        self._portal, self._thread = start_portal()
        try:
            self._portal.call(store.__aenter__)
            self._inline = self._portal.call(CallerThreadAppends.for_store, store)
        except BaseException:
            self._closed = True
            self._stop_portal()
            raise
        LIVE.add(self)

    # --- plumbing -------------------------------------------------------------------------

    def _call(self, func: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise StoreClosedError("this store was closed; open a new one")
        call: Callable[[], Awaitable[T]] = functools.partial(func, *args, **kwargs)
        if self._inline is not None and self._inline.pending:  # the call sees the appends
            call = functools.partial(self._inline.after_drain, call)
        try:
            return self._portal.call(call)
        except RuntimeError as exc:
            if self._closed and "not running" in str(exc):
                raise StoreClosedError("this store was closed; open a new one") from exc
            raise

    def __getattr__(self, name: str) -> Any:
        # A `Store` method added after this facade was written still works, blocking
        # (tests/ergonomics/test_sync.py asks for a typed twin above).
        member = getattr(Store, name, None) if not name.startswith("_") else None
        if member is None or not inspect.iscoroutinefunction(member):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        method = getattr(self._store, name)

        @functools.wraps(method)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._call(method, *args, **kwargs)

        return blocking

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The storage backend the store writes to."""
        return self._store.backend

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def close(self) -> None:
        """Close the store and stop its event-loop thread. Closing twice is harmless."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            LIVE.discard(self)
            try:
                self._portal.call(self._close_store)
            finally:
                self._stop_portal()

    async def _close_store(self) -> None:
        # Appends on callers' threads may have left snapshot writes on the loop. One still
        # running finishes (the backend waits for it) and stands; a later one is refused.
        if self._inline is not None:
            await self._inline.settle()
        await self._store.close()

    def _stop_portal(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone already
            self._portal.call(self._portal.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_closed", True):
            return
        _warn(
            f"agentstore.SyncStore {self!r} was never closed; use `with` or `store.close()`",
            ResourceWarning,
            stacklevel=2,
        )
        # Close it here, so that its loop thread does not outlive it; never from that
        # thread itself (it would wait on itself) nor while the interpreter is shutting
        # down (the atexit hook below has closed every live store by then).
        if threading.current_thread() is not self._thread and not sys.is_finalizing():
            with contextlib.suppress(Exception):
                self.close()

    # --- sessions -------------------------------------------------------------------------

    def create_session(
        self,
        *,
        name: str | None = None,
        session_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        budget: Budget | None = None,
    ) -> Session:
        """Create a session (see `Store.create_session`)."""
        return self._call(
            self._store.create_session,
            name=name,
            session_id=session_id,
            labels=labels,
            budget=budget,
        )

    def get_session(self, session_id: str) -> Session:
        """Return a session (see `Store.get_session`)."""
        return self._call(self._store.get_session, session_id)

    def list_sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> list[Session]:
        """Return sessions newest first (see `Store.list_sessions`)."""
        return self._call(self._store.list_sessions, limit=limit, offset=offset, labels=labels)

    def update_session(
        self,
        session_id: str,
        *,
        name: str | None = UNSET,
        labels: Mapping[str, str] = UNSET,
        budget: Budget | None = UNSET,
    ) -> Session:
        """Rename, relabel or re-budget a session (see `Store.update_session`)."""
        return self._call(
            self._store.update_session, session_id, name=name, labels=labels, budget=budget
        )

    def list_sessions_page(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """Return one page of sessions and the next cursor (see `Store.list_sessions_page`)."""
        return self._call(self._store.list_sessions_page, limit=limit, cursor=cursor, labels=labels)

    def add_append_listener(self, listener: Callable[[Sequence[Event]], None]) -> None:
        """Call `listener(events)` after every append (see `Store.add_append_listener`)."""
        self._store.add_append_listener(listener)

    def delete_session(self, session_id: str) -> None:
        """Delete a session for good (see `Store.delete_session`)."""
        return self._call(self._store.delete_session, session_id)

    def resolve_session_id(self, prefix: str) -> str:
        """Return the one session id starting with `prefix` (see `Store.resolve_session_id`)."""
        return self._call(self._store.resolve_session_id, prefix)

    def prune(
        self,
        *,
        older_than: timedelta,
        labels: Mapping[str, str] | None = None,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> list[PrunedSession]:
        """Delete sessions older than `older_than` (see `Store.prune`)."""
        return self._call(
            self._store.prune, older_than=older_than, labels=labels, dry_run=dry_run, now=now
        )

    def import_session(
        self,
        session: Session | Mapping[str, Any],
        events: Iterable[Event],
        *,
        batch_marks: Mapping[int, int] | None = None,
    ) -> Session:
        """Re-create a session from an export (see `Store.import_session`)."""
        return self._call(self._store.import_session, session, events, batch_marks=batch_marks)

    # --- appending ------------------------------------------------------------------------

    def append(self, session_id: str, event: Event, *, expected_seq: int | None = None) -> Event:
        """Append one event; return the stored event (see `Store.append`; file: on this thread)."""
        stored = self._append_here(session_id, (event,), expected_seq)
        if stored is not None:
            return stored[0]
        return self._call(self._store.append, session_id, event, expected_seq=expected_seq)

    def append_many(
        self,
        session_id: str,
        events: Iterable[Event],
        *,
        expected_seq: int | None = None,
    ) -> list[Event]:
        """Append several events atomically (see `Store.append_many`)."""
        # Materialise here: a generator must not be consumed in the loop thread.
        batch = list(events)
        stored = self._append_here(session_id, batch, expected_seq)
        if stored is not None:
            return stored
        return self._call(self._store.append_many, session_id, batch, expected_seq=expected_seq)

    def _append_here(
        self, session_id: str, batch: Sequence[Event], expected_seq: int | None
    ) -> list[Event] | None:
        # On the caller's thread when the backend can; None: through the loop after all
        # (which raises StoreClosedError once closed).
        if self._inline is None or self._closed:
            return None
        return self._inline.append(session_id, batch, expected_seq)

    def fork(
        self,
        session_id: str,
        *,
        at_seq: int,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        budget: Budget | None = UNSET,
    ) -> Session:
        """Copy the first `at_seq` events into a new session (see `Store.fork`)."""
        return self._call(
            self._store.fork, session_id, at_seq=at_seq, name=name, labels=labels, budget=budget
        )

    # --- tracking -------------------------------------------------------------------------

    def track_tool(
        self,
        session_id: str,
        tool: str,
        args: Mapping[str, Any] | None = None,
        *,
        call_id: str | None = None,
    ) -> tracking.SyncTracker[tracking.ToolCall]:
        """Record a tool call around a `with` block (see `Store.track_tool`)."""
        return tracking.track_tool_sync(self, session_id, tool, args, call_id=call_id)

    def track_llm(
        self,
        session_id: str,
        model: str,
        messages: Sequence[Any] | None = None,
        *,
        prompt: str | None = None,
        provider: str | None = None,
        call_id: str | None = None,
    ) -> tracking.SyncTracker[tracking.LlmCall]:
        """Record an LLM call around a `with` block (see `Store.track_llm`)."""
        return tracking.track_llm_sync(
            self, session_id, model, messages, prompt=prompt, provider=provider, call_id=call_id
        )

    def tool(self, session_id: str, *, name: str | None = None) -> Callable[[Any], Any]:
        """Decorate a function so that each call is recorded (see `agentstore.tool`).

        A sync function stays sync; an async one records through a worker thread.
        """
        return tracking.tool(self, session_id, name=name)


def open_sync(
    path: str | os.PathLike[str] | Backend = DEFAULT_DATA_DIR,
    *,
    in_memory: bool = False,
    reducer: Reducer | None = None,
    snapshot_interval: int = 100,
    durability: Durability = "fsync",
    read_only: bool = False,
    cache_size: int = 1024,
    pricing: bool | Pricer = True,
    read_url: str | None = None,
    token: str | None = None,
    tracer_provider: Any = None,
    backend_options: Mapping[str, Any] | None = None,
) -> SyncStore:
    """Open a blocking event store; the arguments are those of `agentstore.open()`.

    ```python
    with agentstore.open_sync("./agent-data") as store:
        session = store.create_session(name="my-agent")
    ```
    """
    return SyncStore(
        _open_async(
            path,
            in_memory=in_memory,
            reducer=reducer,
            snapshot_interval=snapshot_interval,
            durability=durability,
            read_only=read_only,
            cache_size=cache_size,
            pricing=pricing,
            read_url=read_url,
            token=token,
            tracer_provider=tracer_provider,
            backend_options=backend_options,
        )
    )

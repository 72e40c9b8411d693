"""The `Store` class: what users call. Each job it delegates lives in its own module."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterable, Callable, Generator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import anyio

from agentstore import tracking
from agentstore.backends.base import UNSET, Backend
from agentstore.errors import (
    ConcurrencyError,
    InvalidInputError,
    StoreClosedError,
)
from agentstore.events import Event
from agentstore.pricing import Pricer, resolve_pricer
from agentstore.session import PrunedSession, Session, validate_session_id
from agentstore.state import Budget, Reducer, default_reducer
from agentstore.store.budgets import BudgetBook
from agentstore.store.lifecycle_ops import (
    check_not_spent,
    fork_pages,
    import_pages,
    import_session_of,
    prune_sessions,
)
from agentstore.store.reads import StoreReads
from agentstore.store.sessions import StoreSessions
from agentstore.store.snapshots import SnapshotWriter
from agentstore.store.states import StateKeeper
from agentstore.store.validate import (
    check_budget,
    check_count,
    check_labels,
    in_calendar,
    prepare,
)
from agentstore.store.writes import AppendListener, Writer

__all__ = ["Store"]

_STREAM_PAGE = 1000
_PREFIX_CANDIDATES = 11


class Store(StoreSessions, StoreReads):
    """An event store for agent sessions. Create one with `agentstore.open()`.

    ```python
    async with agentstore.open("./agent-data") as store:
        session = await store.create_session(name="my-agent")
        await store.append(session.id, new_event(EventType.USER_MESSAGE, {"content": "hi"}))
        state = await store.get_state(session.id)
    ```

    A `Store` is awaitable (`store = await agentstore.open(...)`, then
    `await store.close()`) and an async context manager. Use it from one event loop.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        reducer: Reducer | None = None,
        snapshot_interval: int = 100,
        cache_size: int = 1024,
        pricing: bool | Pricer = True,
    ) -> None:
        if not isinstance(backend, Backend):
            raise InvalidInputError(f"expected an agentstore Backend, not {type(backend).__name__}")
        # `bool` is an `int`: True would be an interval of one event, a cache of one.
        if type(snapshot_interval) is not int or snapshot_interval < 0:
            raise InvalidInputError("snapshot_interval must be an integer >= 0 (0 disables)")
        if type(cache_size) is not int or cache_size < 0:
            raise InvalidInputError("cache_size must be an integer >= 0")
        if reducer is not None and not callable(reducer):
            raise InvalidInputError(
                f"reducer must be a function (state, event) -> State, not {reducer!r}"
            )
        self._backend = backend
        self._budgets = BudgetBook(backend, cache_size)
        self._states = StateKeeper(
            backend,
            reducer if reducer is not None else default_reducer,
            self._budgets,
            snapshot_interval=snapshot_interval,
            cache_size=cache_size,
        )
        self._snapshots = SnapshotWriter(self._states)
        self._writer = Writer(backend, self._states, self._snapshots, self._budgets)
        self._followers: set[anyio.CancelScope] = set()
        self._last_created: datetime | None = None
        self._opened = False
        self._closed = False
        # Prices LLM events that have a model and tokens but no cost (agentstore.pricing).
        self._pricer = resolve_pricer(pricing)

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The storage backend this store writes to."""
        return self._backend

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    async def _open(self) -> Self:
        if self._closed:
            raise StoreClosedError("this store was closed; open a new one")
        if not self._opened:
            await self._backend.open()
            self._opened = True
            warm = getattr(self._pricer, "warm", None)
            if warm is not None and not self._backend.read_only:
                # Importing the price data takes ~150 ms: do it off the event loop now,
                # not inside the first append that needs a price.
                await anyio.to_thread.run_sync(warm)
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self._open().__await__()

    async def __aenter__(self) -> Self:
        return await self._open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the store and its backend; end every follow stream. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        for scope in self._followers:
            scope.cancel()
        await self._snapshots.close()
        self._states.clear()
        self._budgets.clear()
        if self._opened:
            await self._backend.close()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_opened", False) and not getattr(self, "_closed", True):
            _warn(
                f"agentstore.Store {self!r} was never closed; use `async with` or "
                "`await store.close()`",
                ResourceWarning,
                stacklevel=2,
            )

    def _check_open(self) -> None:
        if not self._opened or self._closed:
            if self._closed:
                raise StoreClosedError("this store was closed; open a new one")
            raise StoreClosedError(
                "this store is not open: use `store = await agentstore.open(...)` "
                "or `async with agentstore.open(...) as store`"
            )

    def add_append_listener(self, listener: AppendListener) -> None:
        """Call `listener(events)` after every append with the events it wrote.

        Listeners run on the event loop right after the events are stored (and so must be
        quick); one that raises is logged and does not fail the append. OpenTelemetry's
        live export (`agentstore.open(..., tracer_provider=tp)`) is one.
        """
        if not callable(listener):
            raise InvalidInputError("an append listener must be callable")
        self._writer.listeners.append(listener)

    # --- whole sessions ------------------------------------------------------------------

    async def prune(
        self,
        *,
        older_than: timedelta,
        labels: Mapping[str, str] | None = None,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> list[PrunedSession]:
        """Delete the sessions whose last event (or creation) is older than `older_than`.

        `labels` restricts it to sessions with all those labels; `dry_run` deletes
        nothing and reports what would go. A session that receives an event (or loses a
        label) after it was chosen is kept. Returns the sessions with their sizes.
        """
        self._check_open()
        return await prune_sessions(
            self._backend,
            self._delete,
            older_than=older_than,
            labels=labels,
            dry_run=dry_run,
            now=now,
        )

    async def import_session(
        self,
        session: Session | Mapping[str, Any],
        events: Iterable[Event] | AsyncIterable[Event],
        *,
        batch_marks: Mapping[int, int] | None = None,
    ) -> Session:
        """Re-create a session from an export, keeping its ids, sequence numbers and times.

        `events` must be the session's events 1..N in order: a list, or any iterable or
        async iterable (a generator that reads a large export, or another store's events,
        as it goes is consumed a page at a time, never held whole), each id once. Raises
        `SessionExistsError` if the session exists; the session appears whole or not at
        all, and nothing is kept if any event is invalid or `events` raises (its own
        error, as raised). A generator that has run to its end (the one a failed try
        consumed) is refused, not imported as an empty session. `batch_marks` (what
        `backend.batch_marks(id)` of the store copied from returned) keeps how the events
        were batched by `append_many`, so that a data directory gets the same lines back.
        """
        self._check_open()
        fresh = import_session_of(session)
        in_calendar("created_at", fresh.created_at)  # before anything is written
        check_not_spent(events)
        pages = import_pages(fresh.id, events, batch_marks)
        await self._backend.create_session_from_pages(fresh, pages)
        # Anything cached under this id was of a session deleted since: an import keeps
        # the creation time, so `StateKeeper.observe` could not tell them apart.
        self._states.forget(fresh.id)
        return await self._backend.get_session(fresh.id)

    # --- appending ------------------------------------------------------------------------

    async def append(
        self, session_id: str, event: Event, *, expected_seq: int | None = None
    ) -> Event:
        """Append one event; return the stored event with its sequence number and timestamp.

        With `expected_seq=K` the append fails with `ConcurrencyError` unless the
        session's last sequence number is K (0: empty). An event whose `id` is already in
        the session is not written again: the stored event is returned, whatever
        `expected_seq` says (so retrying an acknowledged append is safe).
        """
        self._check_open()
        sid = validate_session_id(session_id)
        pending = prepare(event, self._pricer)
        if expected_seq is not None:
            check_count("expected_seq", expected_seq)
        return (await self._writer.append(sid, [pending], expected_seq)).events[0]

    async def append_many(
        self,
        session_id: str,
        events: Iterable[Event],
        *,
        expected_seq: int | None = None,
    ) -> list[Event]:
        """Append several events atomically (all or none) with one write and one sync.

        Returns the stored events in order; they have consecutive sequence numbers
        (events whose id is already stored are returned as stored, not written again).
        """
        self._check_open()
        sid = validate_session_id(session_id)
        batch = [prepare(event, self._pricer) for event in events]
        if expected_seq is not None:
            check_count("expected_seq", expected_seq)
        if not batch:
            actual = await self._backend.last_seq(sid)  # raise if the session does not exist
            if expected_seq is not None and actual != expected_seq:
                raise ConcurrencyError(sid, expected_seq, actual)
            return []
        return (await self._writer.append(sid, batch, expected_seq)).events

    # --- time travel ----------------------------------------------------------------------

    async def fork(
        self,
        session_id: str,
        *,
        at_seq: int,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        budget: Budget | None = UNSET,
    ) -> Session:
        """Copy the first `at_seq` events of a session into a new session and return it.

        The fork keeps payloads, metadata and timestamps; its event ids are derived from
        the source's; it is labelled `forked_from=<id>` and `forked_at=<N>`, and it inherits
        the source's budget unless `budget` is given (`budget=None`: no budget). It appears
        whole or not at all. The source is not changed.
        """
        self._check_open()
        sid = validate_session_id(session_id)
        check_count("at_seq", at_seq)
        if budget is not UNSET:
            budget = check_budget(budget)
        source = await self._backend.get_session(sid)
        if at_seq > source.event_count:
            raise InvalidInputError(
                f"at_seq={at_seq} is beyond the end of session {sid!r} "
                f"(last is {source.event_count})"
            )
        fork_labels = {**source.labels, **check_labels(labels)}
        fork_labels.update(forked_from=sid, forked_at=str(at_seq))
        new_id = str(uuid.uuid4())
        session = self._new_session(
            new_id,
            name=name if name is not None else source.name,
            labels=fork_labels,
            parent_id=sid,
            forked_at=at_seq,
            budget=source.budget if budget is UNSET else budget,
        )
        await self._backend.create_session_from_pages(
            session, fork_pages(self._backend, source, new_id, at_seq)
        )
        return await self._backend.get_session(new_id)

    # --- tracking (agentstore.tracking) ---------------------------------------------------

    def track_tool(
        self,
        session_id: str,
        tool: str,
        args: Mapping[str, Any] | None = None,
        *,
        call_id: str | None = None,
    ) -> tracking.AsyncTracker[tracking.ToolCall]:
        """Record a tool call around an `async with` block.

        ```python
        async with store.track_tool(session.id, "search_flights", {"to": "MUC"}) as call:
            call.result = await search_flights(to="MUC")
        ```

        Appends `tool_called` on entry and `tool_result` (with `duration_ms` and the same
        `call_id`) on exit; if the block raises, an `error` event instead, and re-raises.
        """
        return tracking.track_tool(self, session_id, tool, args, call_id=call_id)

    def track_llm(
        self,
        session_id: str,
        model: str,
        messages: Sequence[Any] | None = None,
        *,
        prompt: str | None = None,
        provider: str | None = None,
        call_id: str | None = None,
    ) -> tracking.AsyncTracker[tracking.LlmCall]:
        """Record an LLM call around an `async with` block; call `respond()` in it.

        ```python
        async with store.track_llm(session.id, "gpt-4o", messages) as llm:
            llm.respond(text, tokens_in=812, tokens_out=95)
        ```
        """
        return tracking.track_llm(
            self, session_id, model, messages, prompt=prompt, provider=provider, call_id=call_id
        )

    def tool(self, session_id: str, *, name: str | None = None) -> Callable[[Any], Any]:
        """Decorate a function so that each call is recorded as a tool call.

        ```python
        @store.tool(session.id)
        async def search_flights(to: str) -> list[str]: ...
        ```

        See `agentstore.tool`.
        """
        return tracking.tool(self, session_id, name=name)

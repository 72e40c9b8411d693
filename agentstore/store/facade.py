"""The `Store` class: what users call. Each job it delegates lives in its own module."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import anyio

from agentstore import tracking
from agentstore.backends.base import UNSET, Backend, EventFilter, SessionChanges, SessionPage
from agentstore.backends.base import SessionQuery as _Query
from agentstore.errors import (
    AmbiguousSessionError,
    ConcurrencyError,
    InvalidInputError,
    SessionNotFoundError,
    StoreClosedError,
    StoreLockedError,
)
from agentstore.events import Event, EventType
from agentstore.pricing import Pricer, resolve_pricer
from agentstore.session import PrunedSession, Session, validate_session_id
from agentstore.state import Budget, Reducer, State, copy_state, default_reducer
from agentstore.store.budgets import BudgetBook
from agentstore.store.lifecycle_ops import fork_batch, import_batch, prune_sessions
from agentstore.store.states import StateKeeper
from agentstore.store.validate import (
    check_count,
    check_labels,
    make_filter,
    prepare,
)
from agentstore.store.writes import AppendListener, Writer
from agentstore.verify import VerifyReport, check_snapshots

__all__ = ["Store"]

_STREAM_PAGE = 1000
_PREFIX_CANDIDATES = 11


class Store:
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
        if not isinstance(snapshot_interval, int) or snapshot_interval < 0:
            raise InvalidInputError("snapshot_interval must be an integer >= 0 (0 disables)")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidInputError("cache_size must be an integer >= 0")
        self._backend = backend
        self._budgets = BudgetBook(backend, cache_size)
        self._states = StateKeeper(
            backend,
            reducer if reducer is not None else default_reducer,
            self._budgets,
            snapshot_interval=snapshot_interval,
            cache_size=cache_size,
        )
        self._writer = Writer(backend, self._states, self._budgets, self._notify)
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

    # --- sessions -------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        name: str | None = None,
        session_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        budget: Budget | None = None,
    ) -> Session:
        """Create a session (an id is generated unless `session_id` is given).

        With a `budget`, appending an `llm_request` to the session once it is at or over
        the budget raises `BudgetExceededError`. Raises `SessionExistsError` if
        `session_id` is taken.
        """
        self._check_open()
        sid = validate_session_id(session_id) if session_id is not None else str(uuid.uuid4())
        _check_budget_arg(budget)
        session = self._new_session(sid, name=name, labels=labels, budget=budget)
        await self._backend.create_session(session)
        return session

    def _new_session(
        self,
        session_id: str,
        *,
        name: str | None,
        labels: Mapping[str, str] | None,
        **extra: Any,
    ) -> Session:
        if name is not None and not isinstance(name, str):
            raise InvalidInputError("name must be a string")
        clean_labels = check_labels(labels)
        now = datetime.now(UTC)
        # Strictly increasing creation times keep "newest first" exact within a process.
        if self._last_created is not None and now <= self._last_created:
            now = self._last_created + timedelta(microseconds=1)
        self._last_created = now
        return Session(
            id=session_id,
            name=name,
            created_at=now,
            updated_at=now,
            event_count=0,
            labels=clean_labels,
            **extra,
        )

    async def get_session(self, session_id: str) -> Session:
        """Return a session. Raises `SessionNotFoundError` if there is none."""
        self._check_open()
        return await self._backend.get_session(validate_session_id(session_id))

    async def update_session(
        self,
        session_id: str,
        *,
        name: str | None = UNSET,
        labels: Mapping[str, str] = UNSET,
        budget: Budget | None = UNSET,
    ) -> Session:
        """Rename, relabel or re-budget a session; what is not given stays as it is.

        `labels` replaces the labels whole; `budget=None` removes the budget. Returns the
        session as it now is.
        """
        self._check_open()
        sid = validate_session_id(session_id)
        if name is not UNSET and name is not None and not isinstance(name, str):
            raise InvalidInputError("name must be a string or None")
        if budget is not UNSET:
            _check_budget_arg(budget)
        changes = SessionChanges(
            name=name,
            labels=check_labels(labels) if labels is not UNSET else UNSET,
            budget=budget,
        )
        async with self._states.lock(sid):
            session = await self._backend.update_session(sid, changes)
            self._budgets.forget(sid)
            self._states.forget(sid)  # the state carries the budget
        return session

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> list[Session]:
        """Return sessions newest first; `labels` filters (all must match) before paging.

        For paging through many sessions while others come and go, `list_sessions_page`
        (a cursor) never repeats or skips one.
        """
        self._check_open()
        check_count("limit", limit)
        check_count("offset", offset)
        clean = check_labels(labels) or None
        out: list[Session] = []
        cursor: str | None = None
        skip = offset
        while len(out) < limit:
            want = min(skip + limit - len(out), 1000)
            page = await self._backend.list_sessions(_Query(want, cursor, clean))
            taken = page.sessions[skip:]
            skip = max(skip - len(page.sessions), 0)
            out.extend(taken[: limit - len(out)])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return out

    async def list_sessions_page(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """Return one page of sessions, newest first, and the cursor of the next page.

        ```python
        page = await store.list_sessions_page(limit=50)
        while page.next_cursor:
            page = await store.list_sessions_page(limit=50, cursor=page.next_cursor)
        ```
        """
        self._check_open()
        check_count("limit", limit)
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidInputError("cursor must be a string from a previous page")
        clean = check_labels(labels) or None
        return await self._backend.list_sessions(_Query(limit, cursor, clean))

    async def delete_session(self, session_id: str) -> None:
        """Delete a session, its events and its snapshots, for good."""
        self._check_open()
        await self._delete(validate_session_id(session_id), None)

    async def _delete(self, sid: str, expected_seq: int | None) -> None:
        async with self._states.lock(sid):
            self._states.forget(sid)
            self._budgets.forget(sid)
            await self._backend.delete_session(sid, expected_seq=expected_seq)
        self._notify(sid)

    async def resolve_session_id(self, prefix: str) -> str:
        """Return the id of the one session whose id is `prefix` or starts with it.

        Raises `SessionNotFoundError` if none matches and `AmbiguousSessionError` (with
        the `candidates`) if several do, like git's abbreviated commit ids.
        """
        self._check_open()
        if not isinstance(prefix, str) or not prefix:
            raise InvalidInputError("a session id or prefix must be a non-empty string")
        validate_session_id(prefix.rstrip(".") or "x")
        candidates = await self._backend.find_session_ids(prefix, _PREFIX_CANDIDATES)
        if prefix in candidates:
            return prefix
        if not candidates:
            raise SessionNotFoundError(prefix)
        if len(candidates) > 1:
            raise AmbiguousSessionError(prefix, candidates)
        return candidates[0]

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
        self, session: Session | Mapping[str, Any], events: Sequence[Event]
    ) -> Session:
        """Re-create a session from an export, keeping its ids, sequence numbers and times.

        `events` must be the session's events 1..N in order. Raises `SessionExistsError`
        if the session exists; the session appears whole or not at all.
        """
        self._check_open()
        fresh, batch = import_batch(session, events)
        await self._backend.create_session(fresh, batch)
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

    def _notify(self, sid: str) -> None:
        """In-process appends need no notice: backends wake their own followers."""

    # --- state ----------------------------------------------------------------------------

    async def get_state(self, session_id: str, *, at_seq: int | None = None) -> State:
        """Return the session's state: every event folded through the reducer.

        With `at_seq=N`, the state as it was right after event N (0: the empty state).
        """
        self._check_open()
        sid = validate_session_id(session_id)
        if at_seq is not None:
            check_count("at_seq", at_seq)
        head = await self._backend.last_seq(sid)
        if at_seq is not None and at_seq > head:
            raise InvalidInputError(
                f"at_seq={at_seq} is beyond the end of session {sid!r} (last is {head})"
            )
        if at_seq is None or at_seq == head:
            state = self._states.hot(sid, head)
            if state is None:
                async with self._states.lock(sid):
                    state = await self._states.current_locked(sid)
            return copy_state(state)
        return await self._states.at(sid, at_seq)

    # --- reading --------------------------------------------------------------------------

    async def get_events(self, session_id: str, from_seq: int = 0) -> list[Event]:
        """Return the session's events with sequence number >= `from_seq`, in order."""
        self._check_open()
        sid = validate_session_id(session_id)
        check_count("from_seq", from_seq)
        return await self._backend.read(sid, EventFilter(from_seq=max(from_seq, 1)))

    async def replay(
        self,
        session_id: str,
        *,
        types: Iterable[EventType | str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        from_seq: int | None = None,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Return the session's events that match every filter given, in order.

        All bounds are inclusive. `types` keeps events of those types; `since`/`until`
        are timezone-aware datetimes; `limit` caps how many events are returned.
        """
        self._check_open()
        sid = validate_session_id(session_id)
        flt = make_filter(types, since, until, from_seq, to_seq, limit)
        if flt.limit == 0:
            await self._backend.last_seq(sid)  # still raise for an unknown session
            return []
        return await self._backend.read(sid, flt)

    async def stream(
        self, session_id: str, *, from_seq: int = 0, follow: bool = False
    ) -> AsyncIterator[Event]:
        """Yield the session's events in order, from `from_seq` on.

        With `follow=True`, keep waiting for new events (appended through any store or
        process on the same storage) until the consuming task is cancelled or the store is
        closed. The backend wakes the stream (`Backend.wait_for_append`).
        """
        self._check_open()
        sid = validate_session_id(session_id)
        check_count("from_seq", from_seq)
        next_seq = max(from_seq, 1)
        while not self._closed:
            page = await self._backend.read(sid, EventFilter(from_seq=next_seq, limit=_STREAM_PAGE))
            for event in page:
                yield event
            if page:
                next_seq = page[-1].sequence_number + 1
                if len(page) == _STREAM_PAGE:
                    continue
            if not follow:
                return
            with anyio.CancelScope() as scope:
                self._followers.add(scope)
                try:
                    if not self._closed:
                        await self._backend.wait_for_append(sid, next_seq - 1)
                finally:
                    self._followers.discard(scope)

    # --- verification -----------------------------------------------------------------------

    async def verify(self, session_id: str | None = None, *, repair: bool = False) -> VerifyReport:
        """Check every session (or one) and return a report of problems, each with where.

        The backend checks what it stores (for a data directory: every line, torn tails,
        session files); the store checks its reducer's snapshots against a full fold.
        `repair=True` performs only the safe repairs (a torn tail is moved aside) and lists
        them in `report.repairs`.

        ```python
        report = await store.verify()
        for problem in report.problems:
            print(problem)  # events/3f2a.jsonl:17: sequence number 18 where 17 was expected
        ```
        """
        self._check_open()
        if session_id is not None:
            session_id = validate_session_id(session_id)
        if repair and self._backend.read_only:
            raise StoreLockedError("this store was opened read-only; it cannot repair anything")
        report = await self._backend.verify(session_id, repair=repair)
        await check_snapshots(self._backend, report, self._states.reducer, self._states.reducer_id)
        return report

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
            _check_budget_arg(budget)
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
        batch = await fork_batch(self._backend, sid, new_id, at_seq)
        await self._backend.create_session(session, batch)
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


def _check_budget_arg(budget: object) -> None:
    if budget is not None and not isinstance(budget, Budget):
        raise InvalidInputError("budget must be an agentstore.Budget (or None)")

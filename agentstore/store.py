"""The `Store`: sessions, appends, state and replay over one storage backend.

The store validates and encodes events before anything is written, serialises one
process's appends to a session with a per-session lock, and keeps the state of recently
used sessions in memory (folding each append in), so that `get_state` on a hot session
reads nothing. Sequence numbers, atomic batches, `expected_seq` and idempotent ids are
the backend's job, so they hold across processes too.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import warnings
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.lowlevel
import orjson
from pydantic import ValidationError

from agentstore import tracking
from agentstore.backends.base import (
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SnapshotRecord,
)
from agentstore.errors import (
    AgentStoreError,
    AmbiguousSessionError,
    BudgetExceededError,
    ConcurrencyError,
    InvalidEventError,
    InvalidInputError,
    ReducerError,
    SessionNotFoundError,
    StoreClosedError,
)
from agentstore.events import (
    Event,
    EventType,
    Metadata,
    build_event,
    check_event_type,
    copy_metadata,
    encode_metadata,
    encode_payload,
)
from agentstore.pricing import Pricer, apply_price, resolve_pricer
from agentstore.session import PrunedSession, Session, validate_session_id
from agentstore.state import (
    Budget,
    Reducer,
    State,
    copy_state,
    default_reducer,
    reducer_fingerprint,
)
from agentstore.verify import VerifyReport, verify_backend

__all__ = ["Store"]

logger = logging.getLogger("agentstore")

_STREAM_PAGE = 1000
_FOLD_PAGE = 1000
_POLL_MIN = 0.01
_POLL_MAX = 0.5
_FORK_NAMESPACE = uuid.UUID("6f1c2d4e-8a4b-4d59-9a63-2f3c1b7e5a10")


class _NoLock:
    """A lock for backends whose operations never suspend (nothing can interleave)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


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
        if not isinstance(snapshot_interval, int) or snapshot_interval < 0:
            raise InvalidInputError("snapshot_interval must be an integer >= 0 (0 disables)")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidInputError("cache_size must be an integer >= 0")
        self._backend = backend
        self._reducer: Reducer = reducer if reducer is not None else default_reducer
        self._reducer_id = reducer_fingerprint(self._reducer)
        self._snapshot_interval = snapshot_interval
        self._cache: OrderedDict[str, State] = OrderedDict()
        self._cache_size = cache_size
        # Memory-backend calls never suspend, so nothing can interleave with them.
        self._needs_locks = not getattr(backend, "never_suspends", False)
        self._locks: weakref.WeakValueDictionary[str, anyio.Lock] = weakref.WeakValueDictionary()
        self._appended: dict[str, anyio.Event] = {}
        self._budgets: OrderedDict[str, Budget | None] = OrderedDict()
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
            if warm is not None and not getattr(self._backend, "read_only", False):
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
        """Close the store and its backend. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        for event in self._appended.values():
            event.set()
        self._appended.clear()
        self._cache.clear()
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

    def _lock(self, session_id: str) -> contextlib.AbstractAsyncContextManager[Any]:
        if not self._needs_locks:
            return _NO_LOCK
        lock = self._locks.get(session_id)
        if lock is None:
            lock = anyio.Lock(fast_acquire=True)
            self._locks[session_id] = lock
        return lock

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
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidInputError("budget must be an agentstore.Budget")
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
        clean_labels = _check_labels(labels)
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

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> list[Session]:
        """Return sessions newest first; `labels` filters (all must match) before paging."""
        self._check_open()
        _check_count("limit", limit)
        _check_count("offset", offset)
        clean = _check_labels(labels) or None
        return await self._backend.list_sessions(limit=limit, offset=offset, labels=clean)

    async def delete_session(self, session_id: str) -> None:
        """Delete a session, its events and its snapshot, for good."""
        self._check_open()
        sid = validate_session_id(session_id)
        async with self._lock(sid):
            self._cache.pop(sid, None)
            self._budgets.pop(sid, None)
            await self._backend.delete_session(sid)
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
        candidates = await self._backend.session_ids(prefix)
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
        nothing and reports what would go. Returns the sessions with their sizes.
        """
        self._check_open()
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise InvalidInputError("older_than must be a timedelta >= 0")
        cutoff = (_aware("now", now) or datetime.now(UTC)) - older_than
        clean = _check_labels(labels) or None
        doomed: list[Session] = []
        offset, page = 0, 1000
        while True:
            sessions = await self._backend.list_sessions(limit=page, offset=offset, labels=clean)
            doomed.extend(s for s in sessions if s.updated_at < cutoff)
            if len(sessions) < page:
                break
            offset += page
        pruned: list[PrunedSession] = []
        for session in doomed:
            try:
                size = await self._backend.session_size(session.id)
                if not dry_run:
                    await self.delete_session(session.id)
            except SessionNotFoundError:
                continue  # deleted meanwhile by someone else
            pruned.append(PrunedSession(session=session, bytes=size))
        return pruned

    async def import_session(
        self, session: Session | Mapping[str, Any], events: Sequence[Event]
    ) -> Session:
        """Re-create a session from an export, keeping its ids, sequence numbers and times.

        `events` must be the session's events 1..N in order. Raises `SessionExistsError`
        if the session exists; nothing is kept if any event is invalid.
        """
        self._check_open()
        try:
            target = session if isinstance(session, Session) else Session.model_validate(session)
        except ValidationError as exc:
            raise InvalidInputError(f"not a valid session: {exc}") from exc
        sid = validate_session_id(target.id)
        batch: list[PendingEvent] = []
        previous: datetime | None = None
        for expected, event in enumerate(events, start=1):
            pending = _prepare(event)
            where = f"event {expected} of the import"
            if event.sequence_number != expected:
                raise InvalidInputError(
                    f"{where} has sequence number {event.sequence_number}: "
                    "events must be numbered 1..N in order"
                )
            if event.session_id not in ("", sid):
                raise InvalidInputError(f"{where} belongs to session {event.session_id!r}")
            ts = _aware("timestamp", event.timestamp)
            if ts is None or (previous is not None and ts < previous):
                raise InvalidInputError(f"{where} has no timestamp or goes back in time")
            previous = pending.timestamp = ts
            batch.append(pending)
        fresh = target.model_copy(update={"event_count": 0, "updated_at": target.created_at})
        await self._backend.create_session(fresh)
        if batch:
            try:
                await self._backend.append(sid, batch, 0)
            except BaseException:
                with contextlib.suppress(AgentStoreError):
                    await self._backend.delete_session(sid)
                raise
        return await self._backend.get_session(sid)

    # --- appending ------------------------------------------------------------------------

    async def append(
        self, session_id: str, event: Event, *, expected_seq: int | None = None
    ) -> Event:
        """Append one event; return the stored event with its sequence number and timestamp.

        With `expected_seq=K` the append fails with `ConcurrencyError` unless the
        session's last sequence number is K (0: empty). An event whose `id` is already in
        the session is not written again: the stored event is returned.
        """
        self._check_open()
        sid = validate_session_id(session_id)
        pending = _prepare(event, self._pricer)
        if expected_seq is not None:
            _check_count("expected_seq", expected_seq)
        return (await self._append(sid, [pending], expected_seq)).events[0]

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
        batch = [_prepare(event, self._pricer) for event in events]
        if expected_seq is not None:
            _check_count("expected_seq", expected_seq)
        if not batch:
            if expected_seq is not None:
                await self._check_expected(sid, expected_seq)
            else:
                await self._backend.last_seq(sid)  # raise if the session does not exist
            return []
        return (await self._append(sid, batch, expected_seq)).events

    async def _check_expected(self, sid: str, expected_seq: int) -> None:
        actual = await self._backend.last_seq(sid)
        if actual != expected_seq:
            raise ConcurrencyError(sid, expected_seq, actual)

    async def _append(
        self, sid: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        paid = (
            batch[0].type == EventType.LLM_REQUEST
            if len(batch) == 1
            else any(p.type == EventType.LLM_REQUEST for p in batch)
        )
        async with self._lock(sid):
            if paid:
                await self._check_budget(sid)
            result = await self._backend.append(sid, batch, expected_seq)
            if result.written:
                self._fold_appended(sid, result, batch)
                interval = self._snapshot_interval
                last = result.previous_seq + result.written
                if interval and last // interval != result.previous_seq // interval:
                    await self._snapshot_locked(sid)
        if result.written:
            self._notify(sid)
        return result

    async def _budget(self, sid: str) -> Budget | None:
        if sid in self._budgets:
            return self._budgets[sid]
        return self._remember_budget(sid, (await self._backend.get_session(sid)).budget)

    def _remember_budget(self, sid: str, budget: Budget | None) -> Budget | None:
        self._budgets[sid] = budget
        while len(self._budgets) > max(self._cache_size, 1):
            self._budgets.popitem(last=False)
        return budget

    async def _check_budget(self, sid: str) -> None:
        """Refuse a paid call once the session is at or over its budget."""
        if await self._budget(sid) is None:
            return
        state = await self._current_locked(sid)
        if state.over_budget():
            raise BudgetExceededError(
                f"session {sid!r} is at or over its budget ({state.budget}); spent "
                f"${state.tokens.cost_usd:.6f} and {state.tokens.total} tokens. "
                "The llm_request was not recorded"
            )

    def _fold_appended(self, sid: str, result: AppendResult, batch: Sequence[PendingEvent]) -> None:
        cached = self._cache.get(sid)
        if cached is None:
            return
        if cached.version != result.previous_seq:
            del self._cache[sid]  # another process appended in between: rebuild on demand
            return
        state = cached
        try:
            # One stored event per pending one, in order (duplicates give the earlier one).
            for event, pending in zip(result.events, batch, strict=True):
                if event.sequence_number > state.version:
                    state = self._apply(state, _private_copy(event, pending.payload_json))
        except ReducerError:
            self._cache.pop(sid, None)
            logger.warning("reducer failed on session %s; state will be rebuilt", sid)
            return
        self._cache[sid] = state

    def _notify(self, sid: str) -> None:
        waiter = self._appended.pop(sid, None)
        if waiter is not None:
            waiter.set()

    # --- state ----------------------------------------------------------------------------

    def _apply(self, state: State, event: Event) -> State:
        try:
            new = self._reducer(state, event)
        except Exception as exc:
            raise ReducerError(
                f"the reducer raised on event {event.sequence_number} ({event.type}): {exc!r}"
            ) from exc
        if not isinstance(new, State):
            raise ReducerError(f"the reducer returned {type(new).__name__}, not State")
        return new

    def _fold(self, state: State, events: Iterable[Event]) -> State:
        for event in events:
            state = self._apply(state, event)
        return state

    async def get_state(self, session_id: str, *, at_seq: int | None = None) -> State:
        """Return the session's state: every event folded through the reducer.

        With `at_seq=N`, the state as it was right after event N (0: the empty state).
        """
        self._check_open()
        sid = validate_session_id(session_id)
        if at_seq is not None:
            _check_count("at_seq", at_seq)
        head = await self._backend.last_seq(sid)
        if at_seq is not None and at_seq > head:
            raise InvalidInputError(
                f"at_seq={at_seq} is beyond the end of session {sid!r} (last is {head})"
            )
        if at_seq is None or at_seq == head:
            cached = self._cache.get(sid)
            if cached is None or cached.version != head:
                async with self._lock(sid):
                    cached = await self._current_locked(sid)
            else:
                self._cache.move_to_end(sid)
            return copy_state(cached)
        cached = self._cache.get(sid)
        if cached is not None and cached.version <= at_seq:
            base = copy_state(cached)
        else:
            base = await self._base_from_snapshot(sid, at_seq)
        events = await self._backend.read(
            sid, EventFilter(from_seq=base.version + 1, to_seq=at_seq)
        )
        return self._fold(base, events)

    async def _current_locked(self, sid: str) -> State:
        """Bring the cached state up to the log's head (call with the session lock)."""
        head = await self._backend.last_seq(sid)
        cached = self._cache.get(sid)
        if cached is not None and cached.version == head:
            return cached
        if cached is not None and cached.version < head:
            base = cached
        else:
            base = await self._base_from_snapshot(sid, head)
        self._cache.pop(sid, None)  # folded in place below: not valid until done
        state = base
        # A page at a time, with a checkpoint in between: folding a cold session of
        # 10,000 events must not hold the event loop for the whole fold.
        start = base.version + 1
        while start <= head:
            stop = min(start + _FOLD_PAGE - 1, head)
            events = await self._backend.read(sid, EventFilter(from_seq=start, to_seq=stop))
            state = self._fold(state, events)
            start = stop + 1
            if start <= head:
                await anyio.lowlevel.checkpoint()
        if self._cache_size:
            self._cache[sid] = state
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return state

    async def _base_from_snapshot(self, sid: str, max_version: int) -> State:
        if self._snapshot_interval:
            session, snap = await self._backend.load_session_and_snapshot(sid)
            budget = self._remember_budget(sid, session.budget)
        else:
            budget, snap = await self._budget(sid), None
        empty = State(session_id=sid, budget=budget)
        if snap is None or snap.reducer != self._reducer_id:
            return empty
        if not 0 < snap.version <= max_version:
            return empty
        try:
            state = State.model_validate(snap.state)
        except ValidationError as exc:
            logger.warning("snapshot of session %s is invalid (%s); rebuilding", sid, exc)
            return empty
        if state.session_id != sid or state.version != snap.version:
            return empty
        state.budget = empty.budget
        return state

    async def _snapshot_locked(self, sid: str) -> None:
        try:
            state = await self._current_locked(sid)
        except ReducerError:
            logger.warning("reducer failed on session %s; no snapshot taken", sid)
            return
        try:
            # by_alias: the Go original's names ("in", "out") and exact sums on disk.
            data = state.model_dump(mode="json", by_alias=True)
        except (ValueError, TypeError) as exc:
            logger.warning("state of session %s is not JSON (%s); no snapshot taken", sid, exc)
            return
        await self._backend.save_snapshot(
            SnapshotRecord(sid, state.version, data, self._reducer_id, datetime.now(UTC))
        )

    # --- reading --------------------------------------------------------------------------

    async def get_events(self, session_id: str, from_seq: int = 0) -> list[Event]:
        """Return the session's events with sequence number >= `from_seq`, in order."""
        self._check_open()
        sid = validate_session_id(session_id)
        _check_count("from_seq", from_seq)
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
        flt = _make_filter(types, since, until, from_seq, to_seq, limit)
        if flt.limit == 0:
            await self._backend.last_seq(sid)  # still raise for an unknown session
            return []
        return await self._backend.read(sid, flt)

    async def stream(
        self, session_id: str, *, from_seq: int = 0, follow: bool = False
    ) -> AsyncIterator[Event]:
        """Yield the session's events in order, from `from_seq` on.

        With `follow=True`, keep waiting for new events (appended by this process or, on
        the file backend, by another one) until the consuming task is cancelled or the
        store is closed.
        """
        self._check_open()
        sid = validate_session_id(session_id)
        _check_count("from_seq", from_seq)
        next_seq = max(from_seq, 1)
        while True:
            if self._closed:
                return
            page = await self._backend.read(sid, EventFilter(from_seq=next_seq, limit=_STREAM_PAGE))
            for event in page:
                yield event
            if page:
                next_seq = page[-1].sequence_number + 1
                if len(page) == _STREAM_PAGE:
                    continue
            if not follow:
                return
            await self._wait_for_append(sid, next_seq - 1)

    async def _wait_for_append(self, sid: str, seen: int) -> None:
        delay = _POLL_MIN
        while not self._closed:
            if await self._backend.last_seq(sid) > seen:
                return
            waiter = self._appended.get(sid)
            if waiter is None:
                waiter = self._appended[sid] = anyio.Event()
            # In-process appends wake us at once; other processes' are seen by polling,
            # backing off so an idle follower costs next to nothing.
            with anyio.move_on_after(delay):
                await waiter.wait()
            delay = min(delay * 2, _POLL_MAX)

    # --- verification -----------------------------------------------------------------------

    async def verify(self, session_id: str | None = None, *, repair: bool = False) -> VerifyReport:
        """Check every log (or one session's) and return a report of problems as file:line.

        Checks JSON, sequence numbers, session ids, timestamps, torn tails and snapshots
        against a full fold. `repair=True` only moves a torn tail aside (what a writer does
        on its next open anyway) and lists it in `report.repairs`.

        ```python
        report = await store.verify()
        for problem in report.problems:
            print(problem)  # events/3f2a.jsonl:17: sequence number 18 where 17 was expected
        ```
        """
        self._check_open()
        return await verify_backend(
            self._backend,
            session_id,
            reducer=self._reducer,
            reducer_id=self._reducer_id,
            repair=repair,
        )

    # --- time travel ----------------------------------------------------------------------

    async def fork(
        self,
        session_id: str,
        *,
        at_seq: int,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Session:
        """Copy the first `at_seq` events of a session into a new session and return it.

        The fork keeps payloads, metadata and timestamps; its event ids are derived from
        the source's; it is labelled `forked_from=<id>` and `forked_at=<N>`. The source
        is not changed.
        """
        self._check_open()
        sid = validate_session_id(session_id)
        _check_count("at_seq", at_seq)
        source = await self._backend.get_session(sid)
        if at_seq > source.event_count:
            raise InvalidInputError(
                f"at_seq={at_seq} is beyond the end of session {sid!r} "
                f"(last is {source.event_count})"
            )
        events = await self._backend.read(sid, EventFilter(to_seq=at_seq)) if at_seq else []
        fork_labels = {**source.labels, **_check_labels(labels)}
        fork_labels.update(forked_from=sid, forked_at=str(at_seq))
        new_id = str(uuid.uuid4())
        session = self._new_session(
            new_id,
            name=name if name is not None else source.name,
            labels=fork_labels,
            parent_id=sid,
            forked_at=at_seq,
        )
        batch = [
            PendingEvent(
                id=str(uuid.uuid5(_FORK_NAMESPACE, f"{new_id}/{event.id}")),
                type=event.type,
                payload=event.payload,
                payload_json=encode_payload(event.payload),
                metadata=event.metadata,
                metadata_json=encode_metadata(event.metadata),
                timestamp=event.timestamp,
            )
            for event in events
        ]
        await self._backend.create_session(session)
        if batch:
            try:
                await self._backend.append(new_id, batch, 0)
            except BaseException:
                with contextlib.suppress(AgentStoreError):
                    await self._backend.delete_session(new_id)
                raise
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


# --- helpers ------------------------------------------------------------------------------


def _prepare(event: Event, pricer: Pricer | None = None) -> PendingEvent:
    """Validate and encode an event before anything is written.

    With a `pricer`, an LLM event with a model and tokens but no cost is priced first
    (the caller's metadata is left as it is; the priced copy is stored).
    """
    if not isinstance(event, Event):
        raise InvalidEventError(
            f"expected an Event (from agentstore.new_event), not {type(event).__name__}"
        )
    fields = event.__dict__
    event_id = fields["id"]
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 128:
        raise InvalidEventError("event id must be a string of 1 to 128 characters")
    metadata = fields["metadata"]
    if not isinstance(metadata, Metadata):
        raise InvalidEventError("event metadata must be an agentstore.Metadata")
    if pricer is not None:
        metadata = apply_price(fields["type"], metadata, pricer)
    payload = fields["payload"]
    return PendingEvent(
        id=event_id,
        type=check_event_type(fields["type"]),
        payload=payload,
        payload_json=encode_payload(payload),
        metadata=metadata,
        metadata_json=encode_metadata(metadata),
    )


def _private_copy(event: Event, payload_json: bytes) -> Event:
    """Copy an event for the reducer, so the cached state shares nothing with callers.

    The payload comes from the bytes that were stored (already encoded by `_prepare`), so
    the state folds exactly what the log holds, even if the caller changed its object
    while the append was in flight.
    """
    return build_event(
        event.id,
        event.session_id,
        event.sequence_number,
        event.type,
        orjson.loads(payload_json),
        event.timestamp,
        copy_metadata(event.metadata),
    )


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInputError(f"{name} must be an integer >= 0, not {value!r}")


def _check_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidInputError("labels must be a mapping of strings to strings")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidInputError(
                f"labels must map non-empty strings to strings; got {key!r}: {value!r}"
            )
    return dict(labels)


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"{name} must be timezone-aware (e.g. datetime.now(UTC)); stored times are UTC"
        )
    return value


def _make_filter(
    types: Iterable[EventType | str] | None,
    since: datetime | None,
    until: datetime | None,
    from_seq: int | None,
    to_seq: int | None,
    limit: int | None,
) -> EventFilter:
    for name, value in (("from_seq", from_seq), ("to_seq", to_seq), ("limit", limit)):
        if value is not None:
            _check_count(name, value)
    if isinstance(types, str):
        types = [types]
    type_set = frozenset(check_event_type(t) for t in types) if types is not None else None
    return EventFilter(
        from_seq=max(from_seq or 1, 1),
        to_seq=to_seq,
        types=type_set,
        since=_aware("since", since),
        until=_aware("until", until),
        limit=limit,
    )

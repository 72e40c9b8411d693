"""Reducers, the state cache and the snapshot policy.

The state of recently used sessions is kept in memory (an LRU of `cache_size`) and every
append folds into it, so `get_state` on a hot session reads nothing. A cold session starts
from the snapshot its reducer made (if any) and folds the events after it, a page at a
time so a long fold gives the event loop a turn, with the cyclic garbage collector paused
while a page is decoded and folded (`agentstore._gc.gc_paused`: a page makes thousands of
objects that die young; letting the collector walk them page after page cost 20-40% of a
fold).

Snapshots are a cache that can be lost (the log is the truth): an append that crosses the
interval captures the state's JSON in order with the session's appends (memory only, no
I/O; `agentstore.store.state_snapshots`), and `agentstore.store.snapshots` writes it after
the append returns, so a slow or failing snapshot write never holds up the session's
appends, and never fails the append that triggered it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime

import anyio
import anyio.lowlevel
import orjson

from agentstore._gc import full_collections_deferred, gc_paused
from agentstore._turns import Turns
from agentstore.backends.base import AppendResult, Backend, EventFilter, PendingEvent
from agentstore.errors import (
    CorruptLogError,
    ReducerError,
    SessionChangedError,
    SessionNotFoundError,
)
from agentstore.events import Event, build_event
from agentstore.state import (
    Budget,
    Reducer,
    State,
    copy_state,
    default_reducer,
    reducer_fingerprint,
)
from agentstore.store.adoption import Adoption
from agentstore.store.budgets import BudgetBook
from agentstore.store.state_snapshots import SnapshotCapture, SnapshotDisowned
from agentstore.store.validate import private_copy

__all__ = ["LOST_VIEW", "StateKeeper"]

LOST_VIEW = (SessionNotFoundError, SessionChangedError, CorruptLogError)
"""Errors that say the backend lost its view of a session (deleted, made anew, replaced or
restored elsewhere): what the store cached of it may be another's, and is dropped. Not a
transient `StorageUnavailableError`, nor a write the storage refused (a full disk): that
append wrote nothing, and the cache still holds."""

logger = logging.getLogger("agentstore")

_FOLD_PAGE = 1000
"""Events read from the backend at once for a fold (one read: one thread hop on files)."""
_FOLD_SLICE = 128
"""Events folded between two looks at the clock (a turn of the loop every `TURN`)."""


class StateKeeper(SnapshotCapture):
    """Folds events into states, caches them, and saves snapshots."""

    def __init__(
        self,
        backend: Backend,
        reducer: Reducer,
        budgets: BudgetBook,
        *,
        snapshot_interval: int,
        cache_size: int,
    ) -> None:
        self._backend = backend
        self.reducer = reducer
        self.reducer_id = reducer_fingerprint(reducer)
        self._budgets = budgets
        self.snapshot_interval = snapshot_interval
        self._cache: OrderedDict[str, State] = OrderedDict()
        self._cache_size = cache_size
        # Sessions whose snapshot is folded from the log (nothing was cached when it was
        # due), with what this store appends to them meanwhile: see `_adopt`. Not on a
        # backend whose appends never suspend (memory): reading its log back is cheaper
        # than folding every append into a cached state (6.6 vs 8.8 µs per append).
        self._adopting: dict[str, Adoption] = {}
        self._adopts = bool(cache_size) and not type(backend).appends_never_suspend
        # One lock per session, kept (not rebuilt per append); unlocked ones are dropped
        # when the table grows well past the cache.
        self._locks: dict[str, anyio.Lock] = {}
        # When each session was created, as the backend last said (`Backend.head`, an
        # append's result): a session deleted and created again through another store is
        # another session, maybe at the same sequence number, and what is cached of the
        # first (state, adoption, budget) must not answer for it.
        self._born: dict[str, datetime] = {}

    def lock(self, session_id: str) -> anyio.Lock:
        """The lock that serialises this process's writes to a session."""
        lock = self._locks.get(session_id)
        if lock is None:
            if len(self._locks) > 4 * max(self._cache_size, 256):
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[session_id] = anyio.Lock(fast_acquire=True)
        return lock

    def forget(self, session_id: str) -> None:
        """Drop a session's cached state (deleted, or changed elsewhere), and its budget:
        once its creation time is forgotten, `observe` cannot tell the budget's session
        from one made anew, and the state carries the budget anyway."""
        self._cache.pop(session_id, None)
        self._adopting.pop(session_id, None)
        self._born.pop(session_id, None)
        self._budgets.forget(session_id)

    def created(self, session_id: str, born: datetime, budget: Budget | None) -> None:
        """Note a session this store has just created: whatever was cached under its id
        was of a session deleted since (maybe elsewhere).

        Where appends fold into the cache (see `_adopts`) and the state will be needed
        (for snapshots, for the budget's checks), its empty state is cached: its appends
        fold into it and its first snapshot is taken from it, instead of being folded
        from the backend behind the append (on PostgreSQL a second connection reading the
        session back while the next append runs: `append_many` of 100 to a new session
        1.13x faster). Another writer's append or creation time drops it as usual.
        """
        self.forget(session_id)
        if self._adopts and (self.snapshot_interval or budget is not None):
            self.observe(session_id, born)
            self._budgets.remember(session_id, budget)
            self._keep(session_id, State(session_id=session_id, budget=budget))

    def clear(self) -> None:
        """Drop every cached state."""
        self._cache.clear()
        self._adopting.clear()
        self._born.clear()

    def observe(self, session_id: str, born: datetime | None) -> None:
        """Note when the session the backend has under this id was created (None: it did
        not say); if another was cached, forget it and its budget."""
        if born is None:
            return
        known = self._born.get(session_id)
        if known == born:
            return
        if known is not None:
            self.forget(session_id)
        elif len(self._born) > 4 * max(self._cache_size, 256):
            keep = self._cache.keys() | self._adopting.keys()
            for gone in [k for k in self._born if k not in keep]:
                # Its creation time is forgotten: so is its budget (see `forget`).
                del self._born[gone]
                self._budgets.forget(gone)
        self._born[session_id] = born

    # --- folding ----------------------------------------------------------------------------

    def apply(self, state: State, event: Event) -> State:
        """Fold one event; a reducer that raises or returns a non-State is a `ReducerError`."""
        try:
            new = self.reducer(state, event)
        except Exception as exc:
            raise ReducerError(
                f"the reducer raised on event {event.sequence_number} ({event.type}): {exc!r}"
            ) from exc
        if not isinstance(new, State):
            raise ReducerError(f"the reducer returned {type(new).__name__}, not State")
        return new

    def fold(self, state: State, events: Iterable[Event]) -> State:
        """Fold events in order."""
        for event in events:
            state = self.apply(state, event)
        return state

    def fold_appended(
        self, session_id: str, result: AppendResult, batch: Sequence[PendingEvent]
    ) -> None:
        """Fold what an append wrote into the cached state, if the cache is at its head."""
        born = result.session_created_at
        if born is not None and self._born.get(session_id) is not born:  # `is`: most often
            self.observe(session_id, born)
        cached = self._cache.get(session_id)
        if cached is None:
            adoption = self._adopting.get(session_id)
            if adoption is not None:
                adoption.take(result, batch)
            return
        if cached.version != result.previous_seq:
            del self._cache[session_id]  # someone else appended in between: rebuild
            return
        state = cached
        # The built-in reducer reads the metadata's numbers and keeps none of its objects,
        # so it folds the stored metadata as it is; any other reducer gets a private copy.
        # The payload is always decoded from the stored bytes: the state keeps it.
        trusted = self.reducer is default_reducer
        latest = _latest_of_each_type(result.events, state.version) if trusted else None
        try:
            # One stored event per pending one, in order (duplicates give the earlier one).
            for index, (event, pending) in enumerate(zip(result.events, batch, strict=True)):
                if event.sequence_number <= state.version:
                    continue
                if trusted:
                    if latest is None or index in latest:
                        fields = event.__dict__
                        folded = build_event(
                            fields["id"],
                            session_id,
                            fields["sequence_number"],
                            fields["type"],
                            orjson.loads(pending.payload_json),
                            fields["timestamp"],
                            fields["metadata"],
                        )
                    else:
                        # It keeps only the latest payload of each type (and no other
                        # object of an event): the others of the batch are folded as
                        # stored, their payload overwritten by the latest's private copy
                        # before the fold ends (a copy of each cost 0.5 us an event).
                        folded = event
                else:
                    folded = private_copy(event, pending.payload_json)
                state = self.apply(state, folded)
        except ReducerError:
            self._cache.pop(session_id, None)
            logger.warning("reducer failed on session %s; state will be rebuilt", session_id)
            return
        self._cache[session_id] = state

    # --- reading states ---------------------------------------------------------------------

    def hot(self, session_id: str, head: int) -> State | None:
        """Return the cached state if it is at `head` (a copy is the caller's job)."""
        cached = self._cache.get(session_id)
        if cached is None or cached.version != head:
            return None
        self._cache.move_to_end(session_id)
        return cached

    async def current_locked(self, session_id: str, head: int | None = None) -> State:
        """Bring the cached state up to the log's head (call with the session lock).

        `head`: the last sequence number as the caller just read it (with `Backend.head`,
        and told `observe`), which spares a read. It is read again if the cache is past it:
        an append folded meanwhile, or the session was deleted and made anew elsewhere
        (then the cached state is not its state at all).

        A fold that found the session gone, or another, while it read (its creation time
        forgotten or changed meanwhile: it may have folded the pages of two sessions) is
        not kept: the head is read again and the state folded again (twice at most).
        """
        for _ in range(3):
            cached = self._cache.get(session_id)
            if head is None or (cached is not None and cached.version > head):
                head, born = await self._backend.head(session_id)
                self.observe(session_id, born)
                cached = self._cache.get(session_id)
            if cached is not None and cached.version == head:
                return cached
            known = self._born.get(session_id)
            self._cache.pop(session_id, None)  # folded in place below: not valid until done
            if cached is not None and cached.version < head:
                state = await self._fold_range(session_id, cached, head)
            else:
                state = await self._from_snapshot(session_id, head)
            if self._born.get(session_id) is known:
                self._keep(session_id, state)
                return state
            head = None
        return state

    def _keep(self, session_id: str, state: State) -> None:
        """Cache `state` as the session's newest (the least recently used go past the size)."""
        if self._cache_size:
            self._cache[session_id] = state
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    async def at(self, session_id: str, at_seq: int) -> State:
        """Return the state right after event `at_seq` (below the head)."""
        cached = self._cache.get(session_id)
        if cached is not None and cached.version <= at_seq:
            return await self._fold_range(session_id, copy_state(cached), at_seq)
        return await self._from_snapshot(session_id, at_seq)

    async def _fold_range(
        self, session_id: str, state: State, stop_at: int, *, check: bool = False
    ) -> State:
        if stop_at - state.version <= _FOLD_SLICE:
            return await self._fold_pages(session_id, state, stop_at, check)
        with full_collections_deferred():  # see _gc: a full collection is one long stall
            return await self._fold_pages(session_id, state, stop_at, check)

    async def _fold_pages(
        self, session_id: str, state: State, stop_at: int, check: bool = False
    ) -> State:
        # A page at a time, and within a page a turn of the loop once the fold has held it
        # for `TURN` (`Turns`): folding a cold session of 10,000 events must not hold the
        # event loop (the heartbeat of `make bench` asks for no stall over 5 ms).
        # `check`: the state's own last event is read first, and must be the one it folded
        # (`SnapshotDisowned` if not; see `_from_snapshot`).
        start = state.version if check else state.version + 1
        turns = Turns()
        while start <= stop_at:
            stop = min(start + _FOLD_PAGE - 1, stop_at)
            # The backend decodes the page with the collector paused, taking turns of its
            # own, on a clock of its own: a turn before it if this one is due, or the two
            # slices would add up. The fold makes short-lived objects, so it is paused here
            # too. The fold's clock runs on across pages: a read that did not yield (a short
            # one, in memory) counts, or ten pages would hold the loop for 25 ms.
            if turns.due():
                await turns.take()
            events = await self._backend.read(session_id, EventFilter(from_seq=start, to_seq=stop))
            first = 0
            if check:
                if not events or not self._folded(state, events[0]):
                    raise SnapshotDisowned
                check, first = False, 1
            for at in range(first, len(events), _FOLD_SLICE):
                if turns.due():
                    await turns.take()
                with gc_paused():
                    state = self.fold(state, events[at : at + _FOLD_SLICE])
            del events
            start = stop + 1
        await turns.last()
        return state


def _latest_of_each_type(events: Sequence[Event], version: int) -> set[int] | None:
    """The indexes of the last event of each type among `events` past `version` (None for
    a single event: nothing to skip, and the hot path of every lone append)."""
    if len(events) < 2:
        return None
    last: dict[str, int] = {}
    for index, event in enumerate(events):
        seq = event.sequence_number
        if seq > version:  # as the fold skips: a duplicate repeats an earlier number
            last[event.__dict__["type"]] = index
            version = seq
    return set(last.values())

"""The snapshot half of the state cache: when a snapshot is due, how it is captured, and
whether one read back is of the events the log holds.

A mixin of `StateKeeper` (which provides the attributes below). An append that crosses
the snapshot interval captures the state's JSON from the cache, in order with the
session's appends (memory only); `agentstore.store.snapshots` writes it after the append
returns. With nothing cached (a store that only writes), the state is folded from the
log behind the append and adopted into the cache (`agentstore.store.adoption`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agentstore.backends.base import AppendResult, Backend
from agentstore.backends.base import SnapshotRecord as _Snapshot
from agentstore.errors import ReducerError
from agentstore.eventjson import aware_utc
from agentstore.state import Reducer, State, last_folded
from agentstore.store.adoption import Adoption
from agentstore.store.budgets import BudgetBook

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentstore.events import Event

__all__ = ["SnapshotCapture", "SnapshotDisowned", "appended_as_of"]

logger = logging.getLogger("agentstore")


class SnapshotDisowned(Exception):
    """A snapshot's last event is not in the log (see `SnapshotCapture._from_snapshot`)."""


class SnapshotCapture:
    """Snapshots of the cached states (a mixin: `StateKeeper` provides the attributes)."""

    _backend: Backend
    _cache: OrderedDict[str, State]
    _adopting: dict[str, Adoption]
    _adopts: bool
    _born: dict[str, datetime]
    _budgets: BudgetBook
    reducer: Reducer
    reducer_id: str
    snapshot_interval: int

    if TYPE_CHECKING:

        async def at(self, session_id: str, at_seq: int) -> State: ...

        def fold(self, state: State, events: Iterable[Event]) -> State: ...

        def _keep(self, session_id: str, state: State) -> None: ...

        async def _fold_range(
            self, session_id: str, state: State, stop_at: int, *, check: bool = False
        ) -> State: ...

    def snapshot_due(self, result: AppendResult) -> bool:
        """Tell whether an append crossed a multiple of the snapshot interval."""
        interval = self.snapshot_interval
        return bool(interval) and result.last_seq // interval != result.previous_seq // interval

    def capture_snapshot(
        self, session_id: str, version: int, as_of: datetime | None = None
    ) -> _Snapshot | None:
        """Take the snapshot of a session at `version` from the cache (with the lock held).

        Memory only: the JSON is made here, so the state may change as soon as the lock
        is released. None when the cache is not at `version` (then `save_snapshot` folds
        the state itself) or the state cannot be saved. `as_of`: when the state was the
        session's, at the latest (`appended_as_of`), the snapshot's time (default: now).
        """
        cached = self._cache.get(session_id)
        if cached is None or cached.version != version:
            if cached is None and self._adopts:
                adoption = self._adopting.get(session_id)
                if adoption is None or adoption.head < 0:  # one at a time: it takes the rest
                    self._adopting[session_id] = Adoption(version)
            return None
        return self._record(session_id, cached, as_of)

    async def save_snapshot(self, session_id: str, version: int, record: _Snapshot | None) -> None:
        """Write a snapshot taken by `capture_snapshot` (call WITHOUT the session lock).

        Without a record (nothing was cached: a store that only writes), the state at
        `version` is folded from the log first, then brought up to date with what this
        store appended meanwhile and kept in the cache (`_adopt`): the appends after it
        fold into it and the next snapshot is taken from it, instead of the log being read
        back at every snapshot. A failure is logged, never raised: the events are stored
        and acknowledged, and a missing snapshot only makes the next cold fold longer.
        """
        try:
            if record is None:
                # Stamped before the read: a snapshot is never dated after the session it
                # was read from made way for another with its id (see `appended_as_of`).
                # Nor before the session this store knows was appended to was created:
                # its created_at is the clock of the host that made it (or exported it),
                # maybe ahead of this one's, and a snapshot dated before it is refused.
                taken = datetime.now(UTC)
                born = self._born.get(session_id)
                if born is not None and aware_utc(born) > taken:
                    taken = aware_utc(born)
                mine = self._adopting.get(session_id)
                state = await self.at(session_id, version)
                if self._born.get(session_id) is not born:
                    # The session was forgotten while this folded (made anew, deleted):
                    # the state may be the old one's, or torn across the two (as in
                    # `current_locked`): neither saved nor cached.
                    if mine is not None and self._adopting.get(session_id) is mine:
                        del self._adopting[session_id]
                    return
                record = self._record(session_id, state, taken)
                if record is not None:
                    await self._backend.save_snapshot(record)
                if self._adopting.get(session_id) is mine:  # not one made for another since
                    self._adopt(session_id, state)
                return
            await self._backend.save_snapshot(record)
        except Exception as exc:
            self._drop_adoption(session_id, version)
            logger.warning("no snapshot of session %s at %d: %r", session_id, version, exc)

    async def _from_snapshot(self, session_id: str, stop_at: int) -> State:
        """Fold the state at `stop_at` from the session's snapshot (if any) and the events
        after it.

        The snapshot's own last event is read again and must be the one it folded (same
        timestamp; with the default reducer, the payload it keeps): else the snapshot is
        of a history the log no longer holds, and the state is folded from the first
        event. A machine crash can lose the unsynced tail of a log written with
        durability "flush" after a snapshot past it was synced; a log can be restored from
        a backup older than its snapshot. New events then take the lost ones' numbers.
        """
        base = await self._base_from_snapshot(session_id, stop_at)
        if base.version and base.last_event_at is not None:
            try:
                return await self._fold_range(session_id, base, stop_at, check=True)
            except SnapshotDisowned:
                logger.warning(
                    "the snapshot of session %s at %d is not of the events its log holds; "
                    "folding from the first event",
                    session_id,
                    base.version,
                )
                base = State(session_id=session_id, budget=base.budget)
        return await self._fold_range(session_id, base, stop_at)

    def _folded(self, state: State, event: Event) -> bool:
        """Tell whether `event` can be the last event folded into `state`."""
        return last_folded(state, event, self.reducer)

    async def _base_from_snapshot(self, session_id: str, max_version: int) -> State:
        if self.snapshot_interval:
            session, snap = await self._backend.load_session_and_snapshot(
                session_id, self.reducer_id
            )
            budget = self._budgets.remember(session_id, session.budget)
        else:
            budget, snap = await self._budgets.get(session_id), None
        empty = State(session_id=session_id, budget=budget)
        if snap is None or snap.reducer != self.reducer_id:
            return empty
        if not 0 < snap.version <= max_version:
            return empty
        if self.snapshot_interval and aware_utc(snap.created_at) < aware_utc(session.created_at):
            # Of another session of this id (deleted and made again elsewhere while this
            # snapshot was written behind an append of the old one).
            return empty
        try:
            state = State.model_validate(snap.state)
        except ValidationError as exc:
            logger.warning("snapshot of session %s is invalid (%s); rebuilding", session_id, exc)
            return empty
        if state.session_id != session_id or state.version != snap.version:
            return empty
        state.budget = empty.budget
        return state

    def _adopt(self, session_id: str, state: State) -> None:
        """Cache `state`, folded for a snapshot, with the events appended since folded in.

        Synchronous: no append can land between the fold of the last event taken and the
        state entering the cache. Skipped when the cache got the session meanwhile, or
        when another writer (or too many events) broke the adoption off.
        """
        adoption = self._drop_adoption(session_id, state.version)
        if adoption is None or adoption.head < 0 or session_id in self._cache:
            return
        try:
            state = self.fold(state, adoption.events)
        except ReducerError:
            return  # the next cold read folds from the log and says what failed
        self._keep(session_id, state)

    def _drop_adoption(self, session_id: str, version: int) -> Adoption | None:
        adoption = self._adopting.get(session_id)
        if adoption is None or adoption.base != version:
            return None  # none, or another snapshot's
        del self._adopting[session_id]
        return adoption

    def _record(
        self, session_id: str, state: State, taken: datetime | None = None
    ) -> _Snapshot | None:
        try:
            # by_alias: the Go original's names ("in", "out") and exact sums on disk.
            data = state.model_dump(mode="json", by_alias=True)
        except (ValueError, TypeError) as exc:
            logger.warning(
                "state of session %s is not JSON (%s); no snapshot taken", session_id, exc
            )
            return None
        when = taken if taken is not None else datetime.now(UTC)
        return _Snapshot(session_id, state.version, data, self.reducer_id, when)


def appended_as_of(result: AppendResult) -> datetime:
    """When a state folded up to an append's result was, at the latest, its session's: its
    newest event's time (before the append was acknowledged, so before another store could
    make the session anew), not after now nor before the session was created. A snapshot
    of it is dated so: one taken later (a `SyncStore`'s append, folded when the loop gets
    to it) is then refused for a session made anew since (`_base_from_snapshot`, the
    PostgreSQL statements)."""
    now, born = datetime.now(UTC), result.session_created_at
    if born is None:  # the backend does not say: events may be dated before the session
        return now
    stamps = [aware_utc(e.timestamp) for e in result.events if e.timestamp is not None]
    return max(min(max(stamps, default=now), now), aware_utc(born))

"""What a `Store` reads: states, events, replays, live streams and verification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import anyio

from agentstore.backends.base import Backend, EventFilter
from agentstore.errors import InvalidInputError, StoreLockedError
from agentstore.events import Event, EventType
from agentstore.session import validate_session_id
from agentstore.state import State, copy_state
from agentstore.store.snapshots import SnapshotWriter
from agentstore.store.states import LOST_VIEW, StateKeeper
from agentstore.store.validate import check_count, make_filter
from agentstore.verify import VerifyReport, check_snapshots

__all__ = ["StoreReads"]

_STREAM_PAGE = 1000


class StoreReads:
    """The reading half of `Store` (a mixin: `Store` provides the attributes below)."""

    _backend: Backend
    _states: StateKeeper
    _snapshots: SnapshotWriter
    _closed: bool
    _followers: set[anyio.CancelScope]

    def _check_open(self) -> None:
        raise NotImplementedError

    # --- state ----------------------------------------------------------------------------

    async def get_state(self, session_id: str, *, at_seq: int | None = None) -> State:
        """Return the session's state: every event folded through the reducer.

        With `at_seq=N`, the state as it was right after event N (0: the empty state).
        """
        self._check_open()
        sid = validate_session_id(session_id)
        if at_seq is not None:
            check_count("at_seq", at_seq)
        if self._snapshots.busy:  # a store reads its own snapshots (see store.snapshots)
            await self._snapshots.settled(sid)
        try:
            head, born = await self._backend.head(sid)
        except LOST_VIEW:
            # Deleted (and maybe created again) by another store, or the backend dropped
            # its view of the session (a log replaced under it, restored from a backup:
            # the same creation time, other events): what is cached may be another's.
            self._states.forget(sid)
            raise
        self._states.observe(sid, born)
        if at_seq is not None and at_seq > head:
            raise InvalidInputError(
                f"at_seq={at_seq} is beyond the end of session {sid!r} (last is {head})"
            )
        if at_seq is None or at_seq == head:
            state = self._states.hot(sid, head)
            if state is None:
                async with self._states.lock(sid):
                    # `head` was read at the start of this call: a state at least that new
                    # answers it (the second read of the head would cost a thread hop).
                    state = await self._states.current_locked(sid, head)
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
        await self._snapshots.settle_all()  # it checks the snapshots: this store's are written
        report = await self._backend.verify(session_id, repair=repair)
        await check_snapshots(self._backend, report, self._states.reducer, self._states.reducer_id)
        return report

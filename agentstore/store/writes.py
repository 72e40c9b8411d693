"""The append path: one process's appends to a session, in order, with budgets.

Sequence numbers, atomic batches, `expected_seq` and idempotent ids are the backend's
rules (they hold across processes). The writer adds what needs the store: a per-session
lock (so the state cache folds appends in order), budgets checked against the state and
made to hold across processes by appending the paid call with `expected_seq` (retrying
when another writer got in between), folding into the cache, the snapshot policy, and
telling listeners and followers.

A backend whose appends never suspend (`Backend.appends_never_suspend`: memory) does not
need the lock for an append nobody else holds it for: nothing can run between its check
and its end, which is all the lock would guarantee. Nor does one whose concurrent appends
come back in the order of their sequence numbers (`Backend.appends_complete_in_order`:
the file backend's group commit): appends to one session then wait for the disk together
(one write and one sync for all of them) and still fold in order; an append that finds the
cache elsewhere (a cancelled one in between, another process) drops it, to be rebuilt from
the log. Paid appends keep the lock: their budget is checked against the state they
append after. Snapshots are written after the append returns (see
`agentstore.store.snapshots`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from agentstore.backends.base import AppendResult, Backend, PendingEvent
from agentstore.backends.base import SnapshotRecord as _Snapshot
from agentstore.errors import BudgetExceededError, ConcurrencyError
from agentstore.events import Event, EventType
from agentstore.store.budgets import BudgetBook
from agentstore.store.snapshots import SnapshotWriter
from agentstore.store.state_snapshots import appended_as_of
from agentstore.store.states import LOST_VIEW, StateKeeper

__all__ = ["AppendListener", "Writer"]

logger = logging.getLogger("agentstore")

AppendListener = Callable[[Sequence[Event]], None]
"""Called after each append with the events it wrote (not the duplicates it skipped)."""


class Writer:
    """Appends batches for a `Store`."""

    def __init__(
        self,
        backend: Backend,
        states: StateKeeper,
        snapshots: SnapshotWriter,
        budgets: BudgetBook,
    ) -> None:
        self._backend = backend
        self._states = states
        self._snapshots = snapshots
        self._budgets = budgets
        kind = type(backend)
        self._unlocked = kind.appends_never_suspend or kind.appends_complete_in_order
        self.listeners: list[AppendListener] = []

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """Append a prepared batch; see `Backend.append` for the rules."""
        paid = (
            batch[0].type == EventType.LLM_REQUEST
            if len(batch) == 1
            else any(p.type == EventType.LLM_REQUEST for p in batch)
        )
        states = self._states
        lock = states.lock(session_id)
        try:
            if self._unlocked and not paid and not lock.locked():
                # Either nothing from here to the fold suspends, or appends return in
                # sequence order: the folds happen in order, which is all the lock would
                # guarantee.
                result = await self._backend.append(session_id, batch, expected_seq)
                due, snapshot = self._fold(session_id, result, batch)
            else:
                async with lock:
                    head: int | None = None
                    if paid:
                        # The session may have been made anew elsewhere, with a budget
                        # the remembered one lacks: one head read tells (a paid call
                        # costs far more than it), and the budget check starts from it.
                        head, born = await self._backend.head(session_id)
                        states.observe(session_id, born)
                    if paid and await self._budgets.get(session_id) is not None:
                        result = await self._append_within_budget(
                            session_id, batch, expected_seq, head
                        )
                    else:
                        result = await self._backend.append(session_id, batch, expected_seq)
                    due, snapshot = self._fold(session_id, result, batch)
        except LOST_VIEW:
            # Deleted (and maybe made again) elsewhere, or the backend dropped its view
            # of the session (a log replaced under it: the same creation time, other
            # events): the next append must not fold into what is cached of it.
            states.forget(session_id)
            raise
        if result.written:
            if self.listeners:
                self._tell_listeners(result)
            if due:  # written behind this append: neither it nor the next ones wait for it
                await self._snapshots.write(session_id, result.last_seq, snapshot)
        return result

    def _fold(
        self, session_id: str, result: AppendResult, batch: Sequence[PendingEvent]
    ) -> tuple[bool, _Snapshot | None]:
        """Fold what an append wrote into the cache; capture a snapshot if one is due.

        Runs where the session's order holds (under the lock, or inline for a backend
        whose appends never suspend); the snapshot is written later, outside it.
        """
        if not result.written:
            return False, None
        states = self._states
        states.fold_appended(session_id, result, batch)
        if not states.snapshot_due(result):
            return False, None
        return True, states.capture_snapshot(session_id, result.last_seq, appended_as_of(result))

    async def _append_within_budget(
        self,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
        head: int | None = None,
    ) -> AppendResult:
        """Check the budget against the state at the head, and append at exactly that head.

        Another process appending in between makes the append fail with
        `ConcurrencyError`; the budget is then checked again against the new state, so two
        processes cannot both spend the last of a budget. `head`: as the caller just read
        it (`StateKeeper.current_locked`), for the first check only.
        """
        while True:
            state = await self._states.current_locked(session_id, head)
            head = None  # after a ConcurrencyError: read again
            if state.over_budget():
                raise BudgetExceededError(
                    f"session {session_id!r} is at or over its budget ({state.budget}); "
                    f"spent ${state.tokens.cost_usd:.6f} and {state.tokens.total} tokens. "
                    "The llm_request was not recorded"
                )
            at = state.version if expected_seq is None else expected_seq
            try:
                return await self._backend.append(session_id, batch, at)
            except ConcurrencyError:
                if expected_seq is not None:
                    raise  # the caller's own condition failed: theirs to handle
                # Another append got in first: the next check reads the head (and the
                # creation time: a session made anew is forgotten then, `observe`) and
                # folds only what is new onto the state checked, not the whole session.

    def _tell_listeners(self, result: AppendResult) -> None:
        seen: set[int] = set()
        written = []
        for event in result.events:  # a batch may name one new event twice: tell it once
            seq = event.sequence_number
            if seq > result.previous_seq and seq not in seen:
                seen.add(seq)
                written.append(event)
        for listener in self.listeners:
            try:
                listener(written)
            except Exception:
                # The events are stored and acknowledged: a listener cannot undo that.
                logger.exception("an append listener raised; the append itself succeeded")

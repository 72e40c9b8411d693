"""Review 8b: a paid append (an llm_request) in a session with a budget read the session's
head twice: d22b3f1's read (which session is this: `StateKeeper.observe`) and again in
`Writer._append_within_budget` (the state at the head, to check the budget). On PostgreSQL
or the remote backend each read is a round trip (a query, a gRPC call), on the path of
every LLM call of a budgeted agent. The backend here is the real one; it only counts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import agentstore
from agentstore import Budget, EventType, Store, new_event
from agentstore.backends.file import FileBackend
from agentstore.backends.memory import MemoryBackend
from agentstore.events import Event
from agentstore.state import State, default_reducer
from agentstore.testing.conformance.builders import llm


class _CountingHeads(MemoryBackend):
    """The memory backend, counting head reads (`last_seq` is one too)."""

    heads = 0

    async def head(self, session_id: str) -> tuple[int, datetime | None]:
        self.heads += 1
        return await super().head(session_id)

    async def last_seq(self, session_id: str) -> int:
        self.heads += 1
        return await super().last_seq(session_id)


async def test_a_paid_append_with_a_budget_reads_the_head_once() -> None:
    backend = _CountingHeads()
    async with await Store(backend) as store:
        session = await store.create_session(budget=Budget(max_tokens=10_000))
        await store.append(session.id, new_event(EventType.LLM_REQUEST, {"n": 0}))
        await store.append(session.id, llm(tokens_in=10, tokens_out=0, cost=0))
        await store.get_state(session.id)  # cached, at its head
        backend.heads = 0
        await store.append(session.id, new_event(EventType.LLM_REQUEST, {"n": 1}))
        assert backend.heads == 1


_folded: list[int] = []
_other: list[Any] = []  # the other store (a SyncStore), appending when the fold sees "go"


def _racing_reducer(state: State, event: Event) -> State:
    """The default reducer, counting; folding the event marked "go", it makes the other
    store append one more event (a host appending while this one checks the budget)."""
    _folded.append(event.sequence_number)
    if event.type == "custom" and event.payload.get("go") and _other:
        _other.pop().append(event.session_id, new_event("custom", {"n": "between"}))
    return default_reducer(state, event)


async def test_a_paid_append_that_lost_a_race_does_not_fold_the_session_again(
    tmp_path: Path,
) -> None:
    # A budgeted session of 2,000 events, cached in `a`. Another host appends; `a`'s paid
    # append reads the head, folds that event, and meanwhile the other host appends again:
    # `a`'s append at the head it checked fails (ConcurrencyError) and the budget is
    # checked again. The session is the same one (its creation time says so): the state
    # folded so far stands, only the new event is to fold. It dropped the cached state (and,
    # since review 8, the budget) and folded all 2,000 events again, on every lost race.
    data = tmp_path / "data"
    a = await Store(FileBackend(data), reducer=_racing_reducer, snapshot_interval=0)
    try:
        with agentstore.open_sync(data, snapshot_interval=0) as b:
            session = await a.create_session(budget=Budget(max_tokens=1_000_000))
            sid = session.id
            await a.append_many(sid, [new_event("custom", {"n": n}) for n in range(2000)])
            assert (await a.get_state(sid)).version == 2000  # cached
            b.append(sid, new_event("custom", {"go": True}))
            _other.append(b)
            _folded.clear()
            stored = await a.append(sid, new_event(EventType.LLM_REQUEST, {"n": 0}))
            assert stored.sequence_number == 2003
            assert _folded == [2001, 2002, 2003]  # not 1..2002 again
    finally:
        await a.close()

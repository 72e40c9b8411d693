"""Review of snapshot adoption: a write-only store's cached state always equals a full fold.

A store that never read a session folds its log when a snapshot falls due, then keeps
that state, brought up to date with what it appended meanwhile. Whatever happens while
the snapshot is in flight (conflicts, budgets, custom or raising reducers, a delete and
re-creation, other stores, idempotent retries), the state the store then serves must be
the one a fresh store folds from the log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

import agentstore
from agentstore import (
    Budget,
    ConcurrencyError,
    Event,
    EventType,
    Metadata,
    State,
    Store,
    new_event,
)
from agentstore.errors import ReducerError
from agentstore.state import default_reducer
from tests.test_snapshot_adoption import CountingReads


def _llm(tokens: int, kind: str = EventType.LLM_RESPONSE) -> Event:
    return new_event(kind, {"t": tokens}, metadata=Metadata(tokens_in=tokens, cost_usd=0.001))


async def _truth(backend: Any, sid: str, reducer: Any = None) -> State:
    async with Store(backend, reducer=reducer, snapshot_interval=0, cache_size=0) as fresh:
        return await fresh.get_state(sid)


async def _hold_first_snapshot(store: Store, backend: CountingReads, sid: str) -> None:
    """Append up to the first snapshot (10) and hold its write, its state folded."""
    backend.hold = True
    for i in range(10):
        await store.append(sid, _llm(i))
    await backend.held.wait()


async def _release(backend: CountingReads) -> None:
    backend.hold = False
    backend.release.set()
    await wait_all_tasks_blocked()


async def test_a_conflict_and_an_idempotent_retry_in_flight(tmp_path: Path) -> None:
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as store:
        sid = (await store.create_session()).id
        await _hold_first_snapshot(store, backend, sid)
        with pytest.raises(ConcurrencyError):
            await store.append(sid, _llm(1), expected_seq=3)
        kept = _llm(100)
        await store.append(sid, kept, expected_seq=10)
        await store.append(sid, kept)  # a retry: writes nothing
        await store.append_many(sid, [kept, _llm(1000)])  # one old, one new
        await _release(backend)
        state = await store.get_state(sid)
        truth = await _truth(backend, sid)
        assert truth.version == 12 and truth.tokens.input == sum(range(10)) + 1100
        assert state.model_dump() == truth.model_dump()


async def test_a_budgeted_session_in_flight() -> None:
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as store:
        sid = (await store.create_session(budget=Budget(max_tokens=10_000))).id
        await _hold_first_snapshot(store, backend, sid)
        await store.append(sid, _llm(500, EventType.LLM_REQUEST))  # checks the budget
        await store.append(sid, _llm(7))
        await store.update_session(sid, budget=Budget(max_tokens=20_000))
        await store.append(sid, _llm(9))
        await _release(backend)
        state = await store.get_state(sid)
        truth = await _truth(backend, sid)
        assert state.model_dump() == truth.model_dump()
        assert state.budget == Budget(max_tokens=20_000)


async def test_a_budget_changed_while_the_snapshot_is_held() -> None:
    # The held snapshot's state was folded with the old budget: it must not become the
    # cached state once the budget changed (the state carries the budget).
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as store:
        sid = (await store.create_session(budget=Budget(max_tokens=10_000))).id
        await _hold_first_snapshot(store, backend, sid)
        await store.update_session(sid, budget=Budget(max_tokens=20_000))
        await store.append(sid, _llm(7))
        await _release(backend)
        state = await store.get_state(sid)
        assert state.budget == Budget(max_tokens=20_000)
        assert state.model_dump() == (await _truth(backend, sid)).model_dump()


def _keeping(state: State, event: Event) -> State:
    """A custom reducer that keeps what it is given (payloads, metadata values)."""
    state = default_reducer(state, event)
    seen = state.data.setdefault("seen", [])
    seen.append([event.sequence_number, event.payload, event.metadata.tokens_in])
    return state


async def test_a_custom_reducer_never_sees_what_the_caller_changed() -> None:
    backend = CountingReads()
    async with Store(backend, reducer=_keeping, snapshot_interval=10) as store:
        sid = (await store.create_session()).id
        await _hold_first_snapshot(store, backend, sid)
        got = await store.append_many(sid, [_llm(1), _llm(2)])
        for event in got:
            event.payload["t"] = -1
            event.metadata.tokens_in = 99
        await _release(backend)
        state = await store.get_state(sid)
        truth = await _truth(backend, sid, _keeping)
        assert state.model_dump() == truth.model_dump()
        assert state.data["seen"][-2:] == [[11, {"t": 1}, 1], [12, {"t": 2}, 2]]


def _raising(state: State, event: Event) -> State:
    if isinstance(event.payload, dict) and event.payload.get("t") == 666:
        raise RuntimeError("refused")
    return default_reducer(state, event)


async def test_a_reducer_that_raises_on_an_event_appended_in_flight() -> None:
    backend = CountingReads()
    async with Store(backend, reducer=_raising, snapshot_interval=10) as store:
        sid = (await store.create_session()).id
        await _hold_first_snapshot(store, backend, sid)
        await store.append(sid, _llm(666))
        await _release(backend)
        with pytest.raises(ReducerError):
            await store.get_state(sid)  # as a full fold says
        with pytest.raises(ReducerError):
            await _truth(backend, sid, _raising)


async def test_a_session_deleted_and_made_again_while_its_snapshot_is_held() -> None:
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as store:
        sid = (await store.create_session(session_id="again")).id
        await _hold_first_snapshot(store, backend, sid)
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.delete_session, sid)  # waits for the write in flight
            await wait_all_tasks_blocked()
            backend.hold = False
            backend.release.set()
        await store.create_session(session_id=sid)
        for i in range(25):  # past two snapshots of the new session
            await store.append(sid, _llm(1000 + i))
        await wait_all_tasks_blocked()
        state = await store.get_state(sid)
        truth = await _truth(backend, sid)
        assert truth.event_count == 25
        assert state.model_dump() == truth.model_dump()


async def test_write_only_file_stores_interleaving_on_one_session(tmp_path: Path) -> None:
    # Two stores (each only writes) on one directory, taking turns in random-sized
    # batches with retries of events already stored: each store's snapshots and cached
    # states must match the log at every point.
    import random

    rng = random.Random(4)
    async with (
        agentstore.open(tmp_path, snapshot_interval=7) as a,
        agentstore.open(tmp_path, snapshot_interval=5) as b,
    ):
        sid = (await a.create_session()).id
        sent: list[Event] = []
        for _ in range(40):
            writer = rng.choice((a, b))
            batch = [_llm(rng.randrange(100)) for _ in range(rng.randrange(1, 6))]
            if sent and rng.random() < 0.3:
                batch.insert(rng.randrange(len(batch)), rng.choice(sent))  # a retry
            await writer.append_many(sid, batch)
            sent += batch
        async with agentstore.open(tmp_path, snapshot_interval=0, cache_size=0) as fresh:
            truth = await fresh.get_state(sid)
        for store in (a, b):
            assert (await store.get_state(sid)).model_dump() == truth.model_dump()

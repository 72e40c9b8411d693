"""Two stores on one storage: where races live, and what the backend contract adds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from agentstore import (
    Budget,
    BudgetExceededError,
    ConcurrencyError,
    Event,
    EventType,
    Metadata,
    SessionExistsError,
    SessionNotFoundError,
    State,
    Store,
    new_event,
)
from agentstore.testing.conformance.builders import comparable, fold, llm, mixed_events
from agentstore.testing.conformance.fixtures import StoreFactory


def _counting(state: State, event: Event) -> State:
    """A reducer of its own (another fingerprint than the default one)."""
    state.data["count"] = state.data.get("count", 0) + 1
    state.version = event.sequence_number
    state.event_count += 1
    return state


class SharedStorageContract:
    """The conformance tests of two stores on one storage, and the newer contract duties."""

    async def test_two_stores_race_expected_seq_one_wins(self, make_store: StoreFactory) -> None:
        a, b = await make_store(), await make_store()
        session = await a.create_session()
        results: list[object] = []

        async def write(store: Store, n: int) -> None:
            try:
                results.append(
                    await store.append(session.id, new_event("custom", {"n": n}), expected_seq=0)
                )
            except ConcurrencyError as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(write, a if n % 2 else b, n)
        wins = [r for r in results if isinstance(r, Event)]
        losses = [r for r in results if isinstance(r, ConcurrencyError)]
        assert len(wins) == 1 and len(losses) == 7
        assert all(loss.actual == 1 and loss.expected == 0 for loss in losses)
        assert [e.sequence_number for e in await b.get_events(session.id)] == [1]

    async def test_many_writers_on_two_stores_number_without_gaps(
        self, make_store: StoreFactory
    ) -> None:
        a, b = await make_store(), await make_store()
        session = await a.create_session()

        async def write(store: Store, n: int) -> None:
            await store.append(session.id, new_event("custom", {"n": n}))

        async with anyio.create_task_group() as tg:
            for n in range(60):
                tg.start_soon(write, (a, b)[n % 2], n)
        events = await a.get_events(session.id)
        assert [e.sequence_number for e in events] == list(range(1, 61))
        assert sorted(e.payload["n"] for e in events) == list(range(60))
        assert comparable(await a.get_state(session.id)) == comparable(fold(session.id, events))
        assert comparable(await b.get_state(session.id)) == comparable(fold(session.id, events))

    async def test_retry_through_another_store_returns_the_stored_event(
        self, make_store: StoreFactory
    ) -> None:
        a, b = await make_store(), await make_store()
        session = await a.create_session()
        event = new_event("custom", {"n": 1})
        first = await a.append(session.id, event, expected_seq=0)
        # The acknowledgement was lost; the caller retries elsewhere with the same condition.
        again = await b.append(session.id, event, expected_seq=0)
        assert again == first
        assert await b.append(session.id, event) == first
        assert len(await a.get_events(session.id)) == 1

    async def test_retry_repeating_expected_seq_returns_the_stored_event(
        self, store: Store
    ) -> None:
        session = await store.create_session()
        event = new_event("custom", {"n": 1})
        first = await store.append(session.id, event, expected_seq=0)
        assert await store.append(session.id, event, expected_seq=0) == first
        batch = [new_event("custom", {"n": 2}), new_event("custom", {"n": 3})]
        stored = await store.append_many(session.id, batch, expected_seq=1)
        assert await store.append_many(session.id, batch, expected_seq=1) == stored
        # A batch with something new still needs the right expected_seq.
        with pytest.raises(ConcurrencyError):
            await store.append_many(session.id, [*batch, new_event("custom", {})], expected_seq=1)
        assert len(await store.get_events(session.id)) == 3

    async def test_duplicate_ids_map_to_the_stored_events_in_results(self, store: Store) -> None:
        session = await store.create_session()
        old = await store.append(session.id, new_event("custom", {"old": True}))
        fresh = new_event("custom", {"fresh": True})
        retried = new_event("custom", {"old": "again"})
        retried.id = old.id
        out = await store.append_many(session.id, [fresh, retried, fresh])
        assert [e.sequence_number for e in out] == [2, 1, 2]
        assert out[1].payload == {"old": True}
        assert out[0] == out[2]
        assert len(await store.get_events(session.id)) == 2

    async def test_state_follows_another_stores_appends(self, make_store: StoreFactory) -> None:
        a, b = await make_store(), await make_store()
        session = await a.create_session()
        await a.append(session.id, llm(tokens_in=5))
        assert (await a.get_state(session.id)).tokens.input == 5  # now cached in a
        await b.append(session.id, llm(tokens_in=7))
        state = await a.get_state(session.id)
        assert state.tokens.input == 12 and state.version == 2

    @staticmethod
    async def _made_anew(
        a: Store, b: Store, a_events: int, b_events: int
    ) -> tuple[str, list[Event]]:
        """A session `a` has cached with `a_events` LLM responses (tokens and cost), then
        deleted and created again with the same id through `b`, with `b_events` custom
        events: the new session's id and events."""
        sid = f"again-{uuid.uuid4().hex[:12]}"
        await a.create_session(session_id=sid)
        for _ in range(a_events):
            await a.append(sid, llm(tokens_in=100, cost=0.5))
        assert (await a.get_state(sid)).tokens.input == 100 * a_events  # cached in a
        await b.delete_session(sid)
        await b.create_session(session_id=sid)
        return sid, [await b.append(sid, new_event("custom", {"n": n})) for n in range(b_events)]

    @staticmethod
    async def _once_more(call: Any) -> Any:
        """`call()`, again if it raised `SessionNotFoundError`: a backend may raise it once
        when it notices that the session it had open was deleted (see docs/durability.md)."""
        try:
            return await call()
        except SessionNotFoundError:
            return await call()

    async def test_state_of_a_session_made_anew_elsewhere_is_its_own(
        self, make_store: StoreFactory
    ) -> None:
        a, b = await make_store(), await make_store()
        # The same sequence number as what `a` cached: only the session tells them apart.
        sid, events = await self._made_anew(a, b, 3, 3)
        state = await self._once_more(lambda: a.get_state(sid))
        assert comparable(state) == comparable(fold(sid, events))
        assert state.tokens.cost_usd == 0  # none of the old session's spending
        events.append(await b.append(sid, new_event("custom", {"n": 3})))
        assert comparable(await a.get_state(sid)) == comparable(fold(sid, events))

    async def test_append_to_a_session_made_anew_elsewhere_folds_into_its_state(
        self, make_store: StoreFactory
    ) -> None:
        a, b = await make_store(snapshot_interval=4), await make_store()
        sid, events = await self._made_anew(a, b, 3, 3)
        # `a` appends event 4 right after its cached state's 3: the snapshot it takes at 4
        # (from its cache) must be of the new session.
        events.append(await self._once_more(lambda: a.append(sid, llm(tokens_in=1, cost=0))))
        assert comparable(await a.get_state(sid)) == comparable(fold(sid, events))
        await a.close()  # its snapshot is written
        cold = await make_store(snapshot_interval=4)
        assert comparable(await cold.get_state(sid)) == comparable(fold(sid, events))

    async def test_budget_of_a_session_made_anew_elsewhere_is_its_own(
        self, make_store: StoreFactory
    ) -> None:
        a, b = await make_store(), await make_store()
        sid = f"again-{uuid.uuid4().hex[:12]}"
        await a.create_session(session_id=sid, budget=Budget(max_tokens=100))
        await a.append(sid, llm(tokens_in=90, tokens_out=0, cost=0))
        await a.get_state(sid)  # a caches the state and the budget
        await b.delete_session(sid)
        await b.create_session(session_id=sid)  # no budget this time
        await b.append(sid, llm(tokens_in=90, tokens_out=0, cost=0))
        await self._once_more(lambda: a.get_state(sid))
        for n in range(3):  # the old budget (100 tokens) would refuse these
            await a.append(sid, new_event(EventType.LLM_REQUEST, {"n": n}))
            await a.append(sid, llm(tokens_in=90, tokens_out=0, cost=0))
        assert (await a.get_state(sid)).tokens.input == 360

    async def test_budget_holds_across_stores(self, make_store: StoreFactory) -> None:
        a, b = await make_store(), await make_store()
        session = await a.create_session(budget=Budget(max_tokens=100))
        await a.append(session.id, new_event(EventType.LLM_REQUEST, {"n": 1}))
        await a.get_state(session.id)  # a caches the state below budget
        await b.append(session.id, llm(tokens_in=80, tokens_out=30, cost=0.0))
        with pytest.raises(BudgetExceededError):
            await a.append(session.id, new_event(EventType.LLM_REQUEST, {"n": 2}))
        assert len(await a.get_events(session.id)) == 2

    async def test_cache_size_zero_still_equals_the_fold(self, make_store: StoreFactory) -> None:
        store = await make_store(cache_size=0)
        session = await store.create_session()
        events = []
        for event in mixed_events(25):
            events.append(await store.append(session.id, event))
            assert comparable(await store.get_state(session.id)) == comparable(
                fold(session.id, events)
            )

    async def test_snapshots_are_kept_per_reducer(self, make_store: StoreFactory) -> None:
        plain = await make_store(snapshot_interval=1)
        counting = await make_store(snapshot_interval=1, reducer=_counting)
        session = await plain.create_session()
        for i in range(10):
            await (plain, counting)[i % 2].append(session.id, new_event("custom", {"i": i}))
            await plain.get_state(session.id)
            await counting.get_state(session.id)
        events = await plain.get_events(session.id)
        cold_plain = await make_store(snapshot_interval=2, cache_size=0)
        cold_counting = await make_store(snapshot_interval=2, cache_size=0, reducer=_counting)
        assert comparable(await cold_plain.get_state(session.id)) == comparable(
            fold(session.id, events)
        )
        assert comparable(await cold_counting.get_state(session.id)) == comparable(
            fold(session.id, events, _counting)
        )
        backend = plain.backend
        from agentstore.state import reducer_fingerprint

        mine = await backend.load_snapshot(session.id, reducer_fingerprint(_counting))
        theirs = await backend.load_snapshot(session.id, cold_plain_fingerprint())
        assert mine is not None and theirs is not None
        assert mine.state["data"] == {"count": mine.version}
        assert theirs.state["data"] != mine.state["data"]

    async def test_follower_wakes_on_another_stores_append(self, make_store: StoreFactory) -> None:
        a, b = await make_store(), await make_store()
        session = await a.create_session()
        seen: list[int] = []

        async def follow() -> None:
            async for event in a.stream(session.id, follow=True):
                seen.append(event.sequence_number)
                if len(seen) == 3:
                    return

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                for n in range(3):
                    await b.append(session.id, new_event("custom", {"n": n}))
        assert seen == [1, 2, 3]

    async def test_update_session(self, make_store: StoreFactory) -> None:
        a, b = await make_store(), await make_store()
        session = await a.create_session(name="old", labels={"env": "dev", "team": "x"})
        updated = await a.update_session(session.id, name="new")
        assert updated.name == "new" and updated.labels == {"env": "dev", "team": "x"}
        await a.update_session(session.id, labels={"env": "prod"})
        await a.update_session(session.id, budget=Budget(max_tokens=10))
        seen = await b.get_session(session.id)
        assert (seen.name, seen.labels, seen.budget) == (
            "new",
            {"env": "prod"},
            Budget(max_tokens=10),
        )
        assert [s.id for s in await b.list_sessions(labels={"env": "prod"})] == [session.id]
        assert await b.list_sessions(labels={"env": "dev"}) == []
        await b.append(session.id, llm(tokens_in=20, cost=0.0))
        with pytest.raises(BudgetExceededError):
            await b.append(session.id, new_event(EventType.LLM_REQUEST, {}))
        await b.update_session(session.id, budget=None)
        await b.append(session.id, new_event(EventType.LLM_REQUEST, {}))
        assert (await a.get_session(session.id)).budget is None

    async def test_listing_by_cursor_never_repeats_or_skips(self, store: Store) -> None:
        ids = [(await store.create_session(name=str(i))).id for i in range(7)]
        seen: list[str] = []
        page = await store.list_sessions_page(limit=3)
        seen.extend(s.id for s in page.sessions)
        await store.delete_session(ids[0])  # the oldest, not yet listed
        doomed = page.sessions[0].id  # already listed
        await store.delete_session(doomed)
        while page.next_cursor is not None:
            page = await store.list_sessions_page(limit=3, cursor=page.next_cursor)
            seen.extend(s.id for s in page.sessions)
        assert seen == [i for i in reversed(ids) if i != ids[0]]

    async def test_offset_listing_still_works(self, store: Store) -> None:
        ids = [(await store.create_session()).id for _ in range(5)]
        got = await store.list_sessions(limit=2, offset=1)
        assert [s.id for s in got] == list(reversed(ids))[1:3]

    async def test_prefix_lookup_is_bounded(self, store: Store) -> None:
        for i in range(30):
            await store.create_session(session_id=f"run-{i:02d}")
        found = await store.backend.find_session_ids("run-", 5)
        assert found == [f"run-{i:02d}" for i in range(5)]
        assert await store.backend.find_session_ids("run-1", 100) == [
            f"run-{i}" for i in range(10, 20)
        ]

    async def test_create_with_events_refuses_a_taken_id_and_changes_nothing(
        self, store: Store
    ) -> None:
        session = await store.create_session(session_id="taken")
        await store.append(session.id, new_event("custom", {"mine": True}))
        export = [
            Event.model_validate({**e.model_dump(), "payload": {"theirs": True}})
            for e in await store.get_events(session.id)
        ]
        with pytest.raises(SessionExistsError):
            await store.import_session(session, export)
        [kept] = await store.get_events(session.id)
        assert kept.payload == {"mine": True}

    async def test_delete_only_if_unchanged(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {}))
        with pytest.raises(ConcurrencyError):
            await store.backend.delete_session(session.id, expected_seq=0)
        assert (await store.get_session(session.id)).event_count == 1
        await store.backend.delete_session(session.id, expected_seq=1)
        assert await store.list_sessions() == []

    async def test_a_fork_is_active_from_its_creation(self, store: Store) -> None:
        old = datetime(2020, 1, 1, tzinfo=UTC)
        source = await store.import_session(
            {"id": "old-run", "created_at": old, "budget": {"max_tokens": 50}},
            [
                Event.model_validate(
                    {
                        "id": f"e{i}",
                        "session_id": "old-run",
                        "sequence_number": i,
                        "type": "custom",
                        "payload": {"i": i},
                        "timestamp": old + timedelta(minutes=i),
                        "metadata": Metadata(),
                    }
                )
                for i in (1, 2)
            ],
        )
        fork = await store.fork(source.id, at_seq=2)
        assert fork.updated_at >= fork.created_at > old + timedelta(days=365)
        assert fork.budget == Budget(max_tokens=50)
        pruned = await store.prune(older_than=timedelta(days=1))
        assert [p.session.id for p in pruned] == ["old-run"]
        assert [s.id for s in await store.list_sessions()] == [fork.id]
        unbudgeted = await store.fork(fork.id, at_seq=1, budget=None)
        assert unbudgeted.budget is None

    async def test_storage_size_is_known_or_none(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {"x": "y" * 100}))
        size = await store.backend.storage_size(session.id)
        assert size is None or size > 100


def cold_plain_fingerprint() -> str:
    """The default reducer's snapshot key."""
    from agentstore.state import default_reducer, reducer_fingerprint

    return reducer_fingerprint(default_reducer)

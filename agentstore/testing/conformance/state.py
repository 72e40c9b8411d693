"""State: the default reducer, custom reducers, the cache, snapshots and at_seq."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentstore import (
    Event,
    EventType,
    InvalidInputError,
    Metadata,
    ReducerError,
    State,
    Store,
    default_reducer,
    new_event,
)
from agentstore.backends.base import SnapshotRecord
from agentstore.state import reducer_fingerprint
from agentstore.testing.conformance.builders import comparable, fold, llm, mixed_events
from agentstore.testing.conformance.fixtures import StoreFactory


def counting_reducer(state: State, event: Event) -> State:
    """A custom reducer that wraps the default one and counts payload items."""
    state = default_reducer(state, event)
    state.data["items"] = state.data.get("items", 0) + 1
    return state


class StateContract:
    """The conformance tests of `state` (see `agentstore.testing.conformance`)."""

    async def test_default_reducer(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event(EventType.USER_MESSAGE, {"content": "hi"}))
        await store.append(
            session.id,
            new_event(EventType.LLM_REQUEST, {"prompt": "p"}).with_metadata(
                Metadata(tokens_in=850, model="gpt-4", cost_usd=0.0)  # given: not priced
            ),
        )
        await store.append(session.id, llm(tokens_in=0, tokens_out=320, cost=0.018))
        await store.append(
            session.id,
            new_event(EventType.TOOL_CALLED, {"tool": "t"}).with_metadata(Metadata(tool_name="t")),
        )
        await store.append(session.id, new_event(EventType.ERROR, {"message": "boom"}))
        last = await store.append(session.id, new_event("cache_hit", {"k": 1}))
        state = await store.get_state(session.id)
        assert state.session_id == session.id
        assert state.version == 6
        assert state.event_count == 6
        assert state.last_event_at == last.timestamp
        assert (state.tokens.input, state.tokens.output, state.tokens.total) == (850, 320, 1170)
        assert state.tokens.cost_usd == pytest.approx(0.018)
        assert (state.tool_calls, state.errors) == (1, 1)
        assert state.data["user_message"] == {"content": "hi"}
        assert state.data["cache_hit"] == {"k": 1}
        assert state.data["error"] == {"message": "boom"}

    async def test_empty_state(self, store: Store) -> None:
        session = await store.create_session()
        state = await store.get_state(session.id)
        assert (state.version, state.event_count, state.data) == (0, 0, {})
        assert state.last_event_at is None

    async def test_state_equals_fold_with_interleaved_reads(self, store: Store) -> None:
        session = await store.create_session()
        events = mixed_events(40)
        for i, event in enumerate(events):
            await store.append(session.id, event)
            if i % 7 == 0:
                await store.get_state(session.id)  # warm the cache mid-way
        stored = await store.get_events(session.id)
        assert comparable(await store.get_state(session.id)) == comparable(fold(session.id, stored))

    async def test_custom_reducer(self, make_store: StoreFactory) -> None:
        store = await make_store(reducer=counting_reducer)
        session = await store.create_session()
        await store.append_many(session.id, mixed_events(12))
        state = await store.get_state(session.id)
        assert state.data["items"] == 12
        assert state.event_count == 12

    @pytest.mark.parametrize("interval", [0, 1, 7, 100])
    async def test_snapshot_intervals_all_equal_the_full_fold(
        self, make_store: StoreFactory, interval: int
    ) -> None:
        store = await make_store(snapshot_interval=interval)
        session = await store.create_session()
        events = mixed_events(150)
        for chunk in range(0, 150, 25):
            await store.append_many(session.id, events[chunk : chunk + 10])
            for event in events[chunk + 10 : chunk + 25]:
                await store.append(session.id, event)
        expected = comparable(fold(session.id, await store.get_events(session.id)))
        assert comparable(await store.get_state(session.id)) == expected
        await store.close()
        reopened = await make_store(snapshot_interval=interval)
        assert comparable(await reopened.get_state(session.id)) == expected
        # Also from a store with no cache and a different snapshot interval.
        other = await make_store(snapshot_interval=3, cache_size=0)
        assert comparable(await other.get_state(session.id)) == expected

    async def test_snapshot_from_another_reducer_is_ignored(self, make_store: StoreFactory) -> None:
        store = await make_store(snapshot_interval=5)
        session = await store.create_session()
        await store.append_many(session.id, mixed_events(12))
        await store.close()
        custom = await make_store(snapshot_interval=5, reducer=counting_reducer)
        state = await custom.get_state(session.id)
        assert state.data["items"] == 12  # rebuilt from events, not taken from the snapshot

    async def test_unreadable_snapshot_is_rebuilt(self, make_store: StoreFactory) -> None:
        store = await make_store(snapshot_interval=5)
        session = await store.create_session()
        await store.append_many(session.id, mixed_events(12))
        expected = comparable(await store.get_state(session.id))

        bogus = SnapshotRecord(
            session.id,
            10,
            {"session_id": session.id, "version": 10, "tokens": "not tokens"},
            reducer_fingerprint(default_reducer),
            next(iter(await store.get_events(session.id))).timestamp,  # type: ignore[arg-type]
        )
        await store.backend.save_snapshot(bogus)
        await store.close()
        reopened = await make_store(snapshot_interval=5)
        assert comparable(await reopened.get_state(session.id)) == expected

    @pytest.mark.parametrize("differs", ["timestamp", "payload"])
    async def test_a_snapshot_of_events_the_log_does_not_hold_is_not_used(
        self, make_store: StoreFactory, differs: str
    ) -> None:
        # What a machine crash can leave of a log written with durability "flush" (its
        # unsynced tail lost while a snapshot past it was synced, then new events appended
        # in the lost ones' numbers), or a log restored from a backup older than its
        # snapshot: a snapshot at 10 folded from another event 10 than the log's.
        store = await make_store(snapshot_interval=0)
        session = await store.create_session()
        await store.append_many(session.id, mixed_events(12))
        stored = await store.get_events(session.id)
        tenth = stored[9]
        assert tenth.timestamp is not None
        if differs == "timestamp":
            lost = tenth.model_copy(update={"timestamp": tenth.timestamp + timedelta(seconds=1)})
        else:  # an import keeps timestamps: the same time, another event
            lost = tenth.model_copy(update={"payload": {"lost": True}})
        other = fold(session.id, [*stored[:9], lost])
        await store.backend.save_snapshot(
            SnapshotRecord(
                session.id,
                10,
                other.model_dump(mode="json", by_alias=True),
                reducer_fingerprint(default_reducer),
                datetime.now(UTC),
            )
        )
        await store.close()
        for at_seq in (None, 10, 11):
            reopened = await make_store(snapshot_interval=5)
            upto = stored if at_seq is None else stored[:at_seq]
            state = await reopened.get_state(session.id, at_seq=at_seq)
            assert comparable(state) == comparable(fold(session.id, upto))
            await reopened.close()

    async def test_reducer_error_is_ours(self, make_store: StoreFactory) -> None:
        def broken(state: State, event: Event) -> State:
            raise RuntimeError("bug in user reducer")

        store = await make_store(reducer=broken, snapshot_interval=0)
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {}))  # the event itself is kept
        with pytest.raises(ReducerError, match="bug in user reducer"):
            await store.get_state(session.id)
        assert len(await store.get_events(session.id)) == 1

    async def test_state_at_every_seq(self, store: Store) -> None:
        session = await store.create_session()
        await store.append_many(session.id, mixed_events(30))
        stored = await store.get_events(session.id)
        await store.get_state(session.id)  # a warm cache must not leak into the past
        for n in range(31):
            past = await store.get_state(session.id, at_seq=n)
            assert comparable(past) == comparable(fold(session.id, stored[:n])), n
        with pytest.raises(InvalidInputError, match="beyond the end"):
            await store.get_state(session.id, at_seq=31)

    async def test_state_at_seq_with_snapshots(self, make_store: StoreFactory) -> None:
        store = await make_store(snapshot_interval=10)
        session = await store.create_session()
        await store.append_many(session.id, mixed_events(25))
        await store.get_state(session.id)
        await store.append_many(session.id, mixed_events(10))  # crosses 30: snapshot at 35
        await store.close()
        reopened = await make_store(snapshot_interval=10, cache_size=0)
        stored = await reopened.get_events(session.id)
        for n in (0, 9, 10, 29, 30, 34, 35):
            past = await reopened.get_state(session.id, at_seq=n)
            assert comparable(past) == comparable(fold(session.id, stored[:n])), n

    async def test_cache_is_bounded(self, make_store: StoreFactory) -> None:
        store = await make_store(cache_size=3)
        ids = []
        for _ in range(6):
            session = await store.create_session()
            await store.append(session.id, new_event("custom", {}))
            await store.get_state(session.id)
            ids.append(session.id)
        assert len(store._states._cache) == 3
        for sid in ids:
            assert (await store.get_state(sid)).event_count == 1

"""Appends: sequence numbers, timestamps, validation, atomic batches, expected_seq, ids."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import anyio
import pytest

from agentstore import (
    ConcurrencyError,
    Event,
    EventType,
    InvalidEventError,
    InvalidInputError,
    Metadata,
    SessionNotFoundError,
    Store,
    new_event,
)
from agentstore.testing.conformance.fixtures import StoreFactory


class AppendContract:
    """The conformance tests of `append` (see `agentstore.testing.conformance`)."""

    async def test_append_assigns_sequence_and_timestamp(self, store: Store) -> None:
        session = await store.create_session()
        before = datetime.now(UTC)
        event = new_event(EventType.TOOL_CALLED, {"tool": "search_flights", "query": "BER -> MUC"})
        event.with_metadata(Metadata(tool_name="search_flights", duration_ms=800))
        stored = await store.append(session.id, event)
        assert stored.sequence_number == 1
        assert stored.session_id == session.id
        assert stored.id == event.id
        assert stored.type == EventType.TOOL_CALLED
        assert stored.payload == {"tool": "search_flights", "query": "BER -> MUC"}
        assert stored.metadata.tool_name == "search_flights"
        assert stored.timestamp is not None
        assert before <= stored.timestamp <= datetime.now(UTC)
        second = await store.append(session.id, new_event("cache_hit", [1, 2]))
        assert second.sequence_number == 2
        [first, again] = await store.get_events(session.id)
        assert first == stored
        assert again == second

    async def test_every_payload_kind_round_trips(self, store: Store) -> None:
        session = await store.create_session()
        payloads = [None, 0, -1.5, "text ✓ \u2028", True, [], {}, [1, {"a": [None]}], {"k": "€"}]
        for payload in payloads:
            await store.append(session.id, new_event("custom", payload))
        assert [e.payload for e in await store.get_events(session.id)] == payloads

    async def test_get_events_from_seq_is_inclusive(self, store: Store) -> None:
        session = await store.create_session()
        for i in range(8):
            await store.append(session.id, new_event("custom", i))
        assert [e.sequence_number for e in await store.get_events(session.id, from_seq=4)] == [
            4,
            5,
            6,
            7,
            8,
        ]
        assert len(await store.get_events(session.id, from_seq=0)) == 8
        assert await store.get_events(session.id, from_seq=9) == []

    async def test_append_to_unknown_session(self, store: Store) -> None:
        with pytest.raises(SessionNotFoundError):
            await store.append("missing", new_event("custom", {}))

    @pytest.mark.parametrize(
        "payload",
        [{1, 2}, object(), {"x": math.nan}, [math.inf], {"deep": [{"x": -math.inf}]}, b"bytes"],
        ids=["set", "object", "nan", "inf", "nested-inf", "bytes"],
    )
    async def test_bad_payload_rejected_before_writing(self, store: Store, payload: object) -> None:
        session = await store.create_session()
        with pytest.raises(InvalidEventError):
            await store.append(session.id, new_event("custom", payload))
        assert await store.get_events(session.id) == []

    @pytest.mark.parametrize(
        "name", ["", "Upper", "has space", "1starts_digit", "dash-ed", "x" * 65]
    )
    async def test_bad_type_names(self, store: Store, name: str) -> None:
        with pytest.raises(InvalidEventError):
            new_event(name, {})
        with pytest.raises(InvalidEventError):
            Event(type=name)

    async def test_not_an_event(self, store: Store) -> None:
        session = await store.create_session()
        with pytest.raises(InvalidEventError):
            await store.append(session.id, {"type": "custom"})  # type: ignore[arg-type]

    async def test_200_concurrent_appends(self, store: Store) -> None:
        session = await store.create_session()
        stored: list[Event] = []

        async def one(i: int) -> None:
            stored.append(await store.append(session.id, new_event("custom", {"i": i})))

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
        events = await store.get_events(session.id)
        assert [e.sequence_number for e in events] == list(range(1, 201))
        assert sorted(e.sequence_number for e in stored) == list(range(1, 201))
        assert sorted(e.payload["i"] for e in events) == list(range(200))
        stamps = [e.timestamp for e in events]
        assert stamps == sorted(stamps)  # type: ignore[type-var]

    async def test_appends_to_other_sessions_do_not_wait(self, store: Store) -> None:
        a = await store.create_session()
        b = await store.create_session()
        # Hold session a's lock; an append to b must still complete.
        async with store._states.lock(a.id):
            with anyio.fail_after(10):
                await store.append(b.id, new_event("custom", {}))

    async def test_expected_seq(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", 1), expected_seq=0)
        with pytest.raises(ConcurrencyError) as info:
            await store.append(session.id, new_event("custom", 2), expected_seq=0)
        assert (info.value.expected, info.value.actual) == (0, 1)
        await store.append(session.id, new_event("custom", 2), expected_seq=1)
        with pytest.raises(ConcurrencyError):
            await store.append_many(session.id, [new_event("custom", 3)], expected_seq=5)
        assert len(await store.get_events(session.id)) == 2
        with pytest.raises(InvalidInputError):
            await store.append(session.id, new_event("custom", 3), expected_seq=-1)

    async def test_racing_agents_exactly_one_wins(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", 0))
        outcomes: list[str] = []

        async def agent(name: str) -> None:
            try:
                await store.append(session.id, new_event("custom", name), expected_seq=1)
                outcomes.append("won")
            except ConcurrencyError:
                outcomes.append("lost")

        async with anyio.create_task_group() as tg:
            tg.start_soon(agent, "a")
            tg.start_soon(agent, "b")
        assert sorted(outcomes) == ["lost", "won"]
        assert len(await store.get_events(session.id)) == 2

    async def test_idempotent_retry(self, store: Store) -> None:
        session = await store.create_session()
        event = new_event("custom", {"n": 1})
        first = await store.append(session.id, event)
        await store.append(session.id, new_event("custom", {"n": 2}))
        # A retry of the same event (after a timeout, or a crash before the ack) is a no-op.
        retry = await store.append(session.id, event)
        assert retry == first
        assert len(await store.get_events(session.id)) == 2
        assert (await store.get_state(session.id)).event_count == 2

    async def test_idempotent_after_reopen(self, make_store: StoreFactory) -> None:
        open_store = make_store
        store = await open_store()
        session = await store.create_session()
        event = new_event("custom", {"n": 1})
        first = await store.append(session.id, event)
        await store.close()
        # Simulated crash between the write and the acknowledgement: the caller retries.
        reopened = await open_store()
        assert await reopened.append(session.id, event) == first
        assert len(await reopened.get_events(session.id)) == 1

    async def test_append_many_is_atomic_and_consecutive(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", 0))
        batch = [new_event("custom", i) for i in range(1, 6)]
        stored = await store.append_many(session.id, batch)
        assert [e.sequence_number for e in stored] == [2, 3, 4, 5, 6]
        bad = [new_event("custom", 7), new_event("custom", {"x": {1}}), new_event("custom", 9)]
        with pytest.raises(InvalidEventError):
            await store.append_many(session.id, bad)
        assert len(await store.get_events(session.id)) == 6
        assert await store.append_many(session.id, []) == []

    async def test_append_many_skips_stored_and_repeated_ids(self, store: Store) -> None:
        session = await store.create_session()
        old = await store.append(session.id, new_event("custom", "old"))
        fresh = new_event("custom", "fresh")
        stored = await store.append_many(session.id, [old, fresh, fresh])
        assert [e.sequence_number for e in stored] == [1, 2, 2]
        assert stored[0] == old
        assert len(await store.get_events(session.id)) == 2

    async def test_timestamps_never_go_backwards(self, store: Store) -> None:
        session = await store.create_session()
        events = await store.append_many(session.id, [new_event("custom", i) for i in range(50)])
        stamps = [e.timestamp for e in events]
        assert stamps == sorted(stamps)  # type: ignore[type-var]

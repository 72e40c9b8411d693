"""Fork, delete, prune, budgets, open calls, reopen, import, closed stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from agentstore import (
    Budget,
    BudgetExceededError,
    Event,
    EventType,
    InvalidInputError,
    Metadata,
    SessionExistsError,
    SessionNotFoundError,
    Store,
    StoreClosedError,
    new_event,
)
from agentstore.backends.memory import MemoryBackend
from agentstore.testing.conformance.builders import comparable, fold, llm, mixed_events
from agentstore.testing.conformance.fixtures import StoreFactory


class LifecycleContract:
    """The conformance tests of `lifecycle` (see `agentstore.testing.conformance`)."""

    async def test_reopen_keeps_everything(self, make_store: StoreFactory) -> None:
        store = await make_store()
        session = await store.create_session(name="n", labels={"a": "b"})
        stored = await store.append_many(session.id, mixed_events(30))
        state = comparable(await store.get_state(session.id))
        await store.close()
        reopened = await make_store()
        assert await reopened.get_events(session.id) == stored
        assert comparable(await reopened.get_state(session.id)) == state
        got = await reopened.get_session(session.id)
        assert (got.name, got.labels, got.event_count) == ("n", {"a": "b"}, 30)
        more = await reopened.append(session.id, new_event("custom", {}))
        assert more.sequence_number == 31

    async def test_closed_and_unopened_stores(self, make_store: StoreFactory) -> None:
        store = await make_store()
        session = await store.create_session()
        await store.close()
        await store.close()  # harmless
        with pytest.raises(StoreClosedError):
            await store.append(session.id, new_event("custom", {}))
        with pytest.raises(StoreClosedError):
            await store.get_state(session.id)
        unopened = Store(MemoryBackend())
        with pytest.raises(StoreClosedError, match="not open"):
            await unopened.create_session()

    async def test_fork(self, store: Store) -> None:
        source = await store.create_session(name="run", labels={"env": "dev"})
        stored = await store.append_many(source.id, mixed_events(10))
        fork = await store.fork(source.id, at_seq=6, name="retry")
        assert fork.id != source.id
        assert fork.name == "retry"
        assert fork.parent_id == source.id and fork.forked_at == 6
        assert fork.labels == {"env": "dev", "forked_from": source.id, "forked_at": "6"}
        copied = await store.get_events(fork.id)
        assert [e.sequence_number for e in copied] == [1, 2, 3, 4, 5, 6]
        for old, new in zip(stored, copied, strict=False):
            assert (new.type, new.payload, new.metadata, new.timestamp) == (
                old.type,
                old.payload,
                old.metadata,
                old.timestamp,
            )
            assert new.id != old.id and new.session_id == fork.id
        assert comparable(await store.get_state(fork.id)) == comparable(fold(fork.id, copied))
        # Independence, both ways.
        await store.append(fork.id, new_event("custom", "fork only"))
        await store.append(source.id, new_event("custom", "source only"))
        assert [e.payload for e in await store.get_events(fork.id)][-1] == "fork only"
        assert len(await store.get_events(source.id)) == 11
        assert len(await store.get_events(fork.id)) == 7
        assert (await store.get_session(source.id)).parent_id is None

    async def test_fork_ids_are_deterministic_per_fork(self, store: Store) -> None:
        source = await store.create_session()
        await store.append_many(source.id, mixed_events(3))
        a = await store.fork(source.id, at_seq=3)
        b = await store.fork(source.id, at_seq=3)
        a_ids = [e.id for e in await store.get_events(a.id)]
        b_ids = [e.id for e in await store.get_events(b.id)]
        assert len(set(a_ids)) == 3 and a_ids != b_ids
        # Re-appending the fork's events is idempotent.
        again = await store.append_many(a.id, await store.get_events(a.id))
        assert [e.sequence_number for e in again] == [1, 2, 3]

    async def test_fork_bounds(self, store: Store) -> None:
        source = await store.create_session()
        await store.append_many(source.id, mixed_events(3))
        with pytest.raises(InvalidInputError, match="beyond the end"):
            await store.fork(source.id, at_seq=4)
        empty = await store.fork(source.id, at_seq=0)
        assert await store.get_events(empty.id) == []
        with pytest.raises(SessionNotFoundError):
            await store.fork("missing", at_seq=0)

    async def test_delete(self, store: Store) -> None:
        session = await store.create_session(session_id="to-delete")
        await store.append_many(session.id, mixed_events(5))
        await store.get_state(session.id)
        keep = await store.create_session()
        await store.delete_session(session.id)
        for call in (store.get_session, store.get_state, store.get_events, store.replay):
            with pytest.raises(SessionNotFoundError):
                await call(session.id)
        with pytest.raises(SessionNotFoundError):
            await store.append(session.id, new_event("custom", {}))
        with pytest.raises(SessionNotFoundError):
            await store.delete_session(session.id)
        assert [s.id for s in await store.list_sessions()] == [keep.id]
        # The id can be used again, and starts empty.
        await store.create_session(session_id="to-delete")
        assert await store.get_events("to-delete") == []
        assert (await store.get_state("to-delete")).event_count == 0

    async def test_prune_dry_run_and_real(self, store: Store) -> None:
        old = await store.create_session(labels={"env": "dev"})
        await store.append(old.id, new_event("custom", {}))
        other = await store.create_session(labels={"env": "prod"})
        future = datetime.now(UTC) + timedelta(days=31)
        dry = await store.prune(older_than=timedelta(days=30), dry_run=True, now=future)
        assert {p.session.id for p in dry} == {old.id, other.id}
        assert all(p.bytes > 0 for p in dry)
        assert len(await store.list_sessions()) == 2
        labelled = await store.prune(
            older_than=timedelta(days=30), labels={"env": "dev"}, now=future
        )
        assert [p.session.id for p in labelled] == [old.id]
        assert [s.id for s in await store.list_sessions()] == [other.id]
        assert await store.prune(older_than=timedelta(days=30)) == []

    async def test_open_calls_survive_a_crash(self, make_store: StoreFactory) -> None:
        store = await make_store()
        session = await store.create_session()
        await store.append(
            session.id,
            new_event(EventType.TOOL_CALLED, {"tool": "a"}).with_metadata(
                Metadata(tool_name="a", call_id="c1")
            ),
        )
        await store.append(
            session.id,
            new_event(EventType.LLM_REQUEST, {}).with_metadata(Metadata(model="m", call_id="c2")),
        )
        await store.append(
            session.id, new_event(EventType.TOOL_RESULT, {}).with_metadata(Metadata(call_id="c1"))
        )
        await store.append(
            session.id,
            new_event(EventType.TOOL_CALLED, {"tool": "b"}).with_metadata(
                Metadata(tool_name="b", call_id="c3")
            ),
        )
        # The process dies here: reopen, and the state says what is unfinished.
        await store.close()
        reopened = await make_store()
        state = await reopened.get_state(session.id)
        assert sorted(state.open_calls) == ["c2", "c3"]
        assert state.open_calls["c2"].name == "m" and state.open_calls["c2"].sequence_number == 2
        assert state.open_calls["c3"].type == "tool_called" and state.open_calls["c3"].name == "b"
        await reopened.append(
            session.id, new_event(EventType.ERROR, {"message": "x"}).with_metadata(call_id="c3")
        )
        assert sorted((await reopened.get_state(session.id)).open_calls) == ["c2"]

    async def test_budget_guard(self, make_store: StoreFactory) -> None:
        store = await make_store()
        session = await store.create_session(budget=Budget(max_cost_usd=0.05, max_tokens=1000))
        request = new_event(EventType.LLM_REQUEST, {"prompt": "p"})
        await store.append(session.id, request)
        await store.append(session.id, llm(tokens_in=100, tokens_out=100, cost=0.05))
        state = await store.get_state(session.id)
        assert state.budget == Budget(max_cost_usd=0.05, max_tokens=1000)
        assert state.budget_remaining is not None
        assert state.budget_remaining.cost_usd == pytest.approx(0.0)
        assert state.budget_remaining.tokens == 800
        with pytest.raises(BudgetExceededError):
            await store.append(session.id, new_event(EventType.LLM_REQUEST, {"prompt": "again"}))
        with pytest.raises(BudgetExceededError):
            await store.append_many(
                session.id, [new_event("custom", 1), new_event(EventType.LLM_REQUEST, {})]
            )
        # Results always go in: they record what already happened.
        await store.append(session.id, llm(tokens_in=1, tokens_out=1, cost=0.001))
        await store.append(session.id, new_event(EventType.ERROR, {"message": "over budget"}))
        assert len(await store.get_events(session.id)) == 4
        await store.close()
        reopened = await make_store()
        with pytest.raises(BudgetExceededError):
            await reopened.append(session.id, new_event(EventType.LLM_REQUEST, {}))
        assert (await reopened.get_session(session.id)).budget == Budget(
            max_cost_usd=0.05, max_tokens=1000
        )

    async def test_token_budget(self, store: Store) -> None:
        session = await store.create_session(budget=Budget(max_tokens=10))
        await store.append(session.id, new_event(EventType.LLM_REQUEST, {}))
        await store.append(session.id, llm(tokens_in=5, tokens_out=5, cost=0))
        with pytest.raises(BudgetExceededError):
            await store.append(session.id, new_event(EventType.LLM_REQUEST, {}))

    async def test_import_session(self, store: Store) -> None:
        source = await store.create_session(name="orig", labels={"k": "v"})
        stored = await store.append_many(source.id, mixed_events(8))
        exported = await store.get_session(source.id)
        await store.delete_session(source.id)
        imported = await store.import_session(exported.to_dict(), stored)
        assert (imported.id, imported.name, imported.labels) == (source.id, "orig", {"k": "v"})
        assert imported.created_at == exported.created_at
        assert await store.get_events(source.id) == stored
        with pytest.raises(SessionExistsError):
            await store.import_session(exported, stored)

    async def test_import_rejects_gaps(self, store: Store) -> None:
        source = await store.create_session()
        stored = await store.append_many(source.id, mixed_events(4))
        session = await store.get_session(source.id)
        await store.delete_session(source.id)
        with pytest.raises(InvalidInputError, match=r"numbered 1\.\.N"):
            await store.import_session(session, [stored[0], stored[2]])
        with pytest.raises(SessionNotFoundError):
            await store.get_session(source.id)

    async def test_import_from_a_generator_is_whole_or_nothing(self, store: Store) -> None:
        source = await store.create_session(session_id="src")
        await store.append_many(source.id, [new_event("custom", {"i": i}) for i in range(2500)])
        exported = await store.get_events(source.id)
        await store.delete_session(source.id)  # re-imported below, by the same id
        target = {"id": "src", "created_at": datetime.now(UTC)}

        def events(bad_at: int | None) -> Iterator[Event]:
            for event in exported:
                if event.sequence_number == bad_at:
                    yield event.model_copy(update={"sequence_number": 99_999})
                else:
                    yield event

        with pytest.raises(InvalidInputError, match="event 2100 of the import"):
            await store.import_session(target, events(bad_at=2100))
        with pytest.raises(SessionNotFoundError):
            await store.get_session("src")
        created = await store.import_session(target, events(bad_at=None))
        assert created.event_count == 2500
        assert [e.payload for e in await store.get_events("src")] == [e.payload for e in exported]

"""An event named twice in one batch is folded once by the adoption of a snapshot's state."""

from __future__ import annotations

from anyio import wait_all_tasks_blocked

from agentstore import Store
from tests.test_review_adoption import _hold_first_snapshot, _llm, _release, _truth
from tests.test_snapshot_adoption import CountingReads


async def test_an_event_twice_in_one_batch_is_folded_once() -> None:
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as store:
        sid = (await store.create_session()).id
        await _hold_first_snapshot(store, backend, sid)
        twice = _llm(7)
        got = await store.append_many(sid, [twice, twice, _llm(1)])
        assert [e.sequence_number for e in got] == [11, 11, 12]
        await _release(backend)
        await wait_all_tasks_blocked()
        state = await store.get_state(sid)
        truth = await _truth(backend, sid)
        assert truth.event_count == 12
        assert state.model_dump() == truth.model_dump()


async def test_a_write_only_file_store_never_writes_a_wrong_snapshot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # No test hooks: a file store that only writes, batches naming one event twice (a
    # retry inside a batch). Its snapshots must be the log's states.
    import agentstore

    async with agentstore.open(tmp_path, snapshot_interval=10) as store:
        sid = (await store.create_session()).id
        for _ in range(5):
            twice = _llm(7)
            await store.append_many(sid, [*(_llm(i) for i in range(8)), twice, twice, _llm(1)])
    async with agentstore.open(tmp_path, snapshot_interval=0) as full:
        truth = await full.get_state(sid)
    async with agentstore.open(tmp_path, snapshot_interval=10) as later:  # reads snapshots
        state = await later.get_state(sid)
    assert truth.event_count == 50
    assert state.model_dump() == truth.model_dump()

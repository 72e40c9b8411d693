"""The sync facade: blocking calls, many threads at once, closing, streaming, parity."""

from __future__ import annotations

import gc
import inspect
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import agentstore
from agentstore import (
    EventType,
    SessionNotFoundError,
    Store,
    StoreClosedError,
    SyncStore,
    new_event,
)

THREADS = 8
PER_THREAD = 50


@pytest.fixture(params=["memory", "file"])
def sync_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncStore]:
    if request.param == "memory":
        store = agentstore.open_sync(in_memory=True)
    else:
        store = agentstore.open_sync(tmp_path / "data", durability="flush")
    with store:
        yield store


def test_blocking_round_trip(sync_store: SyncStore) -> None:
    session = sync_store.create_session(name="sync-agent", labels={"env": "test"})
    stored = sync_store.append(session.id, agentstore.user_message("hi"))
    assert stored.sequence_number == 1
    more = sync_store.append_many(
        session.id, (agentstore.state_updated(step=i) for i in range(3)), expected_seq=1
    )
    assert [e.sequence_number for e in more] == [2, 3, 4]
    assert sync_store.get_state(session.id).event_count == 4
    assert sync_store.get_state(session.id, at_seq=2).version == 2
    assert [e.sequence_number for e in sync_store.get_events(session.id, from_seq=3)] == [3, 4]
    replayed = sync_store.replay(session.id, types=EventType.STATE_UPDATED, limit=2)
    assert [e.sequence_number for e in replayed] == [2, 3]
    assert [e.sequence_number for e in sync_store.stream(session.id, from_seq=2)] == [2, 3, 4]
    assert sync_store.get_session(session.id).event_count == 4
    assert sync_store.resolve_session_id(session.id[:8]) == session.id
    assert [s.id for s in sync_store.list_sessions(labels={"env": "test"})] == [session.id]
    fork = sync_store.fork(session.id, at_seq=2, name="what-if")
    assert sync_store.get_session(fork.id).event_count == 2
    sync_store.delete_session(fork.id)
    with pytest.raises(SessionNotFoundError):
        sync_store.get_session(fork.id)


def test_errors_propagate_as_agentstore_errors(sync_store: SyncStore) -> None:
    with pytest.raises(SessionNotFoundError):
        sync_store.append("no-such-session", agentstore.user_message("hi"))
    session = sync_store.create_session()
    with pytest.raises(agentstore.ConcurrencyError):
        sync_store.append(session.id, agentstore.user_message("hi"), expected_seq=5)


def test_eight_threads_append_at_once(sync_store: SyncStore) -> None:
    session = sync_store.create_session()
    start = threading.Barrier(THREADS)

    def work(worker: int) -> list[int]:
        start.wait()  # all threads call at the same time
        seqs = []
        for i in range(PER_THREAD):
            event = new_event("work", {"worker": worker, "i": i})
            event.with_metadata(worker_id=str(worker))
            seqs.append(sync_store.append(session.id, event).sequence_number)
        return seqs

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    total = THREADS * PER_THREAD
    assert sorted(s for seqs in results for s in seqs) == list(range(1, total + 1))
    for seqs in results:
        assert seqs == sorted(seqs)  # each thread's own appends stay in its order
    events = sync_store.get_events(session.id)
    assert [e.sequence_number for e in events] == list(range(1, total + 1))
    for worker in range(THREADS):
        mine = [e.payload["i"] for e in events if e.payload["worker"] == worker]
        assert mine == list(range(PER_THREAD))
    assert sync_store.get_state(session.id).event_count == total


def test_eight_threads_track_tools_on_their_own_sessions(sync_store: SyncStore) -> None:
    sessions = [sync_store.create_session() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def work(index: int) -> None:
        sid = sessions[index].id
        start.wait()
        for i in range(10):
            with sync_store.track_tool(sid, "search", {"i": i}) as call:
                call.result = i * index

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))
    for index, session in enumerate(sessions):
        state = sync_store.get_state(session.id)
        assert (state.event_count, state.tool_calls, state.open_calls) == (20, 10, {})
        results = sync_store.replay(session.id, types=[EventType.TOOL_RESULT])
        assert [e.payload["result"] for e in results] == [i * index for i in range(10)]


def test_follow_stream_sees_appends_from_another_thread(sync_store: SyncStore) -> None:
    session = sync_store.create_session()
    sync_store.append(session.id, agentstore.user_message("first"))
    seen: list[int] = []
    stream = sync_store.stream(session.id, follow=True)
    seen.append(next(stream).sequence_number)
    writer = threading.Thread(
        target=lambda: sync_store.append(session.id, agentstore.user_message("second"))
    )
    writer.start()
    seen.append(next(stream).sequence_number)
    writer.join()
    stream.close()
    assert seen == [1, 2]


def test_closed_store_raises_and_close_is_idempotent() -> None:
    store = agentstore.open_sync(in_memory=True)
    session = store.create_session()
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StoreClosedError):
        store.get_session(session.id)


def test_a_store_that_cannot_open_raises_and_leaves_no_thread(tmp_path: Path) -> None:
    # Only the store's own loop threads count: other tests' worker threads may still be
    # winding down while this runs.
    def loops() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "agentstore-sync"}

    before = loops()
    missing = tmp_path / "does-not-exist"
    with pytest.raises(agentstore.AgentStoreError):
        agentstore.open_sync(missing, read_only=True)
    assert loops() == before


def test_an_unclosed_sync_store_warns() -> None:
    store = agentstore.open_sync(in_memory=True)
    with pytest.warns(ResourceWarning, match="never closed"):
        store.__del__()
    store.close()
    del store
    gc.collect()


def test_wraps_only_a_store() -> None:
    with pytest.raises(TypeError, match=r"wraps an agentstore\.Store"):
        SyncStore(object())  # type: ignore[arg-type]


def _public(cls: type) -> dict[str, object]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


def test_parity_every_store_method_has_a_blocking_twin() -> None:
    store_api = _public(Store)
    sync_api = _public(SyncStore)
    with agentstore.open_sync(in_memory=True) as store:
        for name, member in store_api.items():
            twin = getattr(store, name)  # a typed twin, or the generic blocking wrapper
            if inspect.iscoroutinefunction(member):
                assert callable(twin), name
                assert not inspect.iscoroutinefunction(twin), name
        with pytest.raises(AttributeError):
            store.no_such_method  # noqa: B018
    for name, member in store_api.items():
        if name not in sync_api or not inspect.isfunction(member):
            continue
        expected = inspect.signature(member)
        actual = inspect.signature(sync_api[name])  # type: ignore[arg-type]
        assert list(actual.parameters) == list(expected.parameters), name
        for param in expected.parameters.values():
            twin_param = actual.parameters[param.name]
            assert (twin_param.kind, twin_param.default) == (param.kind, param.default), name


def test_a_store_method_without_a_typed_twin_still_blocks() -> None:
    with agentstore.open_sync(in_memory=True) as store:
        session = store.create_session()
        # The generic wrapper runs any coroutine method of Store on the store's loop.
        wrapper = SyncStore.__getattr__(store, "get_session")
        assert wrapper(session.id).id == session.id

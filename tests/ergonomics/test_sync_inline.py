"""`SyncStore` appends on the caller's thread (file backend): order, reads, errors, crashes.

On a backend with `appends_on_caller_thread` a `SyncStore` appends on the thread that
calls it and hands the fold, the listeners and the snapshot to its event loop without
waiting. What users depend on: sequence numbers 1..N whatever the threads do, a thread
reads its own writes, listeners and followers see every event, errors are the store's own
and write nothing, and nothing acknowledged is lost, not at close and not at a SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import anyio
import orjson
import pytest

import agentstore
from agentstore import (
    BudgetExceededError,
    ConcurrencyError,
    Event,
    InvalidEventError,
    InvalidInputError,
    SessionNotFoundError,
    StoreClosedError,
    SyncStore,
    new_event,
)
from agentstore.backends.file import FileBackend
from agentstore.backends.memory import MemoryBackend
from agentstore.state import Budget

THREADS = 8
PER_THREAD = 40


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data: Path) -> Iterator[SyncStore]:
    with agentstore.open_sync(data, durability="flush", snapshot_interval=0) as sync:
        yield sync


def _cold_state(data: Path, sid: str) -> dict[str, object]:
    """The state folded from the log alone, by a fresh store with no snapshots."""
    with agentstore.open_sync(data, snapshot_interval=0, cache_size=0) as fresh:
        return fresh.get_state(sid).model_dump()


def test_the_file_backend_appends_on_the_callers_thread() -> None:
    class PortalOnly(FileBackend):
        appends_on_caller_thread: ClassVar[bool] = False

    class CountingAppends(FileBackend):
        async def append(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return await super().append(*args, **kwargs)

    assert FileBackend.appends_on_caller_thread
    assert not PortalOnly.appends_on_caller_thread
    # A subclass that changes `append` alone must not be bypassed by `append_blocking`.
    assert not CountingAppends.appends_on_caller_thread
    assert not MemoryBackend.appends_on_caller_thread


def test_an_append_does_not_wait_for_a_busy_event_loop(store: SyncStore) -> None:
    # The first append's listener holds the store's loop; a second append from another
    # thread still returns, durable, because it never needs the loop.
    sid = store.create_session().id
    holding, release = threading.Event(), threading.Event()
    told: list[int] = []

    def listener(events: Sequence[Event]) -> None:
        told.extend(e.sequence_number for e in events)
        if len(told) == 1:
            holding.set()
            release.wait(30)
            holding.clear()

    store.add_append_listener(listener)
    assert store.append(sid, agentstore.user_message("one")).sequence_number == 1
    assert holding.wait(30)
    second: list[int] = []
    worker = threading.Thread(
        target=lambda: second.append(
            store.append(sid, agentstore.user_message("two")).sequence_number
        )
    )
    worker.start()
    worker.join(30)
    loop_was_held = holding.is_set()  # the listener was still running all along
    release.set()
    worker.join(30)
    assert second == [2] and loop_was_held
    assert store.get_state(sid).event_count == 2
    assert told == [1, 2]


def test_each_thread_reads_its_own_writes(store: SyncStore, data: Path) -> None:
    shared = store.create_session().id
    own = [store.create_session().id for _ in range(THREADS)]
    for sid in [shared, *own]:
        store.get_state(sid)  # cached: every append folds into it on the loop
    start = threading.Barrier(THREADS)

    def work(worker: int) -> None:
        start.wait()
        for i in range(PER_THREAD):
            seq = store.append(shared, new_event("work", {"w": worker})).sequence_number
            state = store.get_state(shared)
            assert state.version >= seq and state.event_count == state.version
            store.append(own[worker], agentstore.tool_called("search", {"i": i}))
            mine = store.get_state(own[worker])
            assert (mine.version, mine.event_count, len(mine.open_calls)) == (2 * i + 1,) * 2 + (
                i + 1,
            )
            store.append(own[worker], agentstore.state_updated(step=i))
            mine = store.get_state(own[worker])
            assert mine.data["state_updated"] == {"step": i} and mine.version == 2 * i + 2

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))
    for sid in [shared, *own]:
        assert store.get_state(sid).model_dump() == _cold_state(data, sid)


def test_many_threads_on_one_session_and_on_many(store: SyncStore, data: Path) -> None:
    shared = store.create_session().id
    own = [store.create_session().id for _ in range(THREADS)]
    store.get_state(shared)
    start = threading.Barrier(THREADS)

    def work(worker: int) -> list[tuple[str, int, str]]:
        start.wait()
        acked = []
        for i in range(PER_THREAD):
            if i % 5 == 4:  # a batch now and then: atomic, consecutive numbers
                batch = [new_event("work", {"w": worker, "i": i, "part": p}) for p in (0, 1)]
                stored = store.append_many(shared, batch)
                assert stored[1].sequence_number == stored[0].sequence_number + 1
            else:
                stored = [store.append(shared, new_event("work", {"w": worker, "i": i}))]
            stored.append(store.append(own[worker], new_event("work", {"i": i})))
            acked += [(e.session_id, e.sequence_number, e.id) for e in stored]
        return acked

    with ThreadPoolExecutor(THREADS) as pool:
        acked = [a for acks in pool.map(work, range(THREADS)) for a in acks]
    with agentstore.open_sync(data) as reopened:
        stored = {
            sid: {e.sequence_number: e for e in reopened.get_events(sid)} for sid in [shared, *own]
        }
        for events in stored.values():
            assert sorted(events) == list(range(1, len(events) + 1)), "1..N, no gap"
        for sid, seq, event_id in acked:
            assert stored[sid][seq].id == event_id, "every acknowledged event is where it said"
        per_session = Counter(sid for sid, _, _ in acked)
        assert {sid: len(events) for sid, events in stored.items()} == per_session
        for worker in range(THREADS):  # each thread's appends keep its order
            mine = [e.payload["i"] for e in stored[shared].values() if e.payload["w"] == worker]
            assert mine == sorted(mine)
    assert store.get_state(shared).model_dump() == _cold_state(data, shared)


def test_listeners_hear_every_event_once_on_the_loop_before_the_next_call(
    store: SyncStore,
) -> None:
    sids = [store.create_session().id for _ in range(2)]
    told: list[str] = []
    threads_seen: set[str] = set()

    def listener(events: Sequence[Event]) -> None:
        threads_seen.add(threading.current_thread().name)
        told.extend(e.id for e in events)

    store.add_append_listener(listener)

    def work(worker: int) -> None:
        for i in range(PER_THREAD):
            stored = store.append_many(sids[i % 2], [new_event("work", {"w": worker, "i": i})])
            store.get_session(sids[i % 2])  # any call through the loop runs after the telling
            assert stored[0].id in told

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert len(told) == len(set(told)) == 4 * PER_THREAD
    assert threads_seen == {"agentstore-sync"}  # on the store's loop, as with a Store


def test_followers_are_woken_by_appends_from_threads(store: SyncStore, data: Path) -> None:
    sid = store.create_session().id
    total = 4 * 10
    with agentstore.open_sync(data) as other:  # another store in this process follows too
        followers = [store.stream(sid, follow=True), other.stream(sid, follow=True)]

        def follow(stream: Iterator[Event]) -> list[int]:
            seqs = [next(stream).sequence_number for _ in range(total)]
            stream.close()  # type: ignore[attr-defined]
            return seqs

        with ThreadPoolExecutor(6) as pool:
            seen = [pool.submit(follow, stream) for stream in followers]
            list(
                pool.map(
                    lambda w: [store.append(sid, new_event("work", {"w": w})) for _ in range(10)],
                    range(4),
                )
            )
            for future in seen:
                assert future.result(timeout=60) == list(range(1, total + 1))


def test_errors_are_the_stores_own_and_write_nothing(store: SyncStore) -> None:
    sid = store.create_session().id
    store.append(sid, agentstore.user_message("first"))
    with pytest.raises(InvalidEventError):
        store.append(sid, {"type": "user_message"})  # type: ignore[arg-type]
    with pytest.raises(InvalidEventError):  # one bad event: none of the batch is written
        store.append_many(sid, [agentstore.user_message("ok"), "not an event"])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError):
        store.append("../escape", agentstore.user_message("hi"))
    with pytest.raises(InvalidInputError):
        store.append(sid, agentstore.user_message("hi"), expected_seq=-1)
    with pytest.raises(SessionNotFoundError):
        store.append("no-such-session", agentstore.user_message("hi"))
    with pytest.raises(ConcurrencyError) as lost:
        store.append_many(sid, [agentstore.user_message("late")], expected_seq=0)
    assert (lost.value.expected, lost.value.actual) == (0, 1)
    assert store.get_state(sid).event_count == 1
    assert store.append(sid, agentstore.user_message("ok"), expected_seq=1).sequence_number == 2
    store.close()
    with pytest.raises(StoreClosedError):
        store.append(sid, agentstore.user_message("after close"))
    with pytest.raises(StoreClosedError):
        store.append_many(sid, [agentstore.user_message("after close")])


def test_a_budget_counts_what_threads_appended(data: Path) -> None:
    # Spending appended on callers' threads counts: the paid `llm_request` (kept on the
    # loop, under the session lock) is refused once the responses used the budget up.
    with agentstore.open_sync(data, durability="flush") as store:
        sid = store.create_session(budget=Budget(max_tokens=100)).id
        store.get_state(sid)
        store.append(sid, agentstore.llm_request("gpt-4o", prompt="a"))
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda _: store.append(sid, agentstore.llm_response("gpt-4o", "x", 10, 15)),
                    range(4),
                )
            )
        with pytest.raises(BudgetExceededError):
            store.append(sid, agentstore.llm_request("gpt-4o", prompt="b"))
        assert store.get_state(sid).tokens.total == 100


def test_snapshots_are_written_for_appends_from_threads(data: Path) -> None:
    with agentstore.open_sync(data, durability="flush", snapshot_interval=10) as store:
        sid = store.create_session().id
        store.get_state(sid)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: store.append(sid, new_event("work", {"i": i})), range(35)))
        state = store.get_state(sid).model_dump()
    # Written by the time the store is closed, and a snapshot the next store can use.
    snapshot = orjson.loads((data / "snapshots" / f"{sid}.json").read_bytes())
    assert snapshot["version"] in (10, 20, 30)
    with agentstore.open_sync(data, snapshot_interval=10) as reopened:
        assert reopened.get_state(sid).model_dump() == state
        report = reopened.verify(sid)
        assert report.ok, [str(p) for p in report.problems]


def test_closing_while_threads_append_loses_nothing_acknowledged(data: Path) -> None:
    store = agentstore.open_sync(data, durability="fsync")
    sid = store.create_session().id
    acked: list[list[tuple[int, str]]] = [[] for _ in range(THREADS)]
    endings: list[BaseException] = []
    enough = threading.Semaphore(0)

    def work(worker: int) -> None:
        while True:
            try:
                stored = store.append(sid, new_event("work", {"w": worker}))
            except StoreClosedError as exc:
                endings.append(exc)
                return
            acked[worker].append((stored.sequence_number, stored.id))
            enough.release()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for _ in range(50):
        assert enough.acquire(timeout=30)
    store.close()
    for thread in threads:
        thread.join(30)
    assert len(endings) == THREADS, "each thread got a clear StoreClosedError after close"
    with agentstore.open_sync(data) as reopened:
        events = {e.sequence_number: e.id for e in reopened.get_events(sid)}
    assert sorted(events) == list(range(1, len(events) + 1))
    everything = [a for acks in acked for a in acks]
    assert all(events[seq] == event_id for seq, event_id in everything)
    assert len(events) == len(everything), "nothing unacknowledged was written either"


CHILD = """
import sys, threading
import agentstore
data, shared = sys.argv[1], sys.argv[2]
out = threading.Lock()
store = agentstore.open_sync(data, durability="fsync")
own = [store.create_session().id for _ in range(4)]
print("ready", flush=True)
def work(w):
    i = 0
    while True:
        sid = shared if i % 2 else own[w]
        if i % 3 == 2:
            batch = [agentstore.new_event("work", {"w": w, "i": i, "p": p}) for p in (0, 1)]
            stored = store.append_many(sid, batch)
        else:
            stored = [store.append(sid, agentstore.new_event("work", {"w": w, "i": i}))]
        with out:
            for e in stored:
                sys.stdout.write(f"ack {e.session_id} {e.sequence_number} {e.id}\\n")
            sys.stdout.flush()
        i += 1
for w in range(4):
    threading.Thread(target=work, args=(w,), daemon=True).start()
threading.Event().wait()
"""


@pytest.mark.slow
@pytest.mark.parametrize("acks_before_kill", [1, 60, 400])
def test_sigkill_while_threads_append_loses_nothing_acknowledged(
    data: Path, acks_before_kill: int
) -> None:
    with agentstore.open_sync(data) as store:
        shared = store.create_session().id
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), shared], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
            lines = [proc.stdout.readline() for _ in range(acks_before_kill)]
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            lines += proc.stdout.readlines()  # a line cut short by the kill is not counted
        finally:
            if proc.poll() is None:
                proc.kill()
    acks = [line.split() for line in lines if line.endswith("\n") and line.startswith("ack ")]
    assert len(acks) >= acks_before_kill

    async def check() -> None:
        async with agentstore.open(data) as reopened:
            report = await reopened.verify()
            assert report.ok, [str(p) for p in report.problems]
            logs = {}
            for session in await reopened.list_sessions(limit=100):
                events = await reopened.get_events(session.id)
                assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
                logs[session.id] = {e.sequence_number: e.id for e in events}
            for _, sid, seq, event_id in acks:
                assert logs[sid][int(seq)] == event_id, "an acknowledged event was lost"

    anyio.run(check)

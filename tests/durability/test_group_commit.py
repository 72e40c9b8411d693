"""Group commit: many appends waiting on one sync share it, and lose nothing doing so.

The file backend's commit thread writes every append that waits for a round with one write
and one `fdatasync` per log. These tests hold it to the rules each append has alone:
numbered 1..N without a gap, a batch contiguous and whole, idempotent ids and
`expected_seq` judged per append (one failing does not fail its neighbours), the store's
cached state the same as a fold of the log, and nothing acknowledged lost when the process
is killed among sixteen concurrent appenders of one session.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

import agentstore
from agentstore import ConcurrencyError, StoreClosedError, new_event
from agentstore.backends.file import atomic, commits
from tests.durability.conftest import expect_line, finish, start_worker
from tests.durability.worker import payload, plan

SMALL = 16 * 1024
SESSIONS_WORKER = Path(__file__).with_name("sessions_worker.py")
TASKS = 16


async def _fresh_state(data: Path, session_id: str) -> agentstore.State:
    async with agentstore.open(data, snapshot_interval=0) as other:
        return await other.get_state(session_id)


async def test_concurrent_appends_to_one_session_number_fold_and_batch_in_order(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)  # cache the state: every append below folds into it
        returned: dict[int, list[list[int]]] = defaultdict(list)

        async def task(k: int) -> None:
            rng = random.Random(k)
            for i in range(30):
                n = 1 if rng.random() < 0.7 else rng.randint(2, 5)
                events = [new_event("custom", {"task": k, "i": i, "part": p}) for p in range(n)]
                if n == 1:
                    stored = [await store.append(sid, events[0])]
                else:
                    stored = await store.append_many(sid, events)
                returned[k].append([e.sequence_number for e in stored])

        await asyncio.gather(*(task(k) for k in range(TASKS)))
        events = await store.get_events(sid)
        cached = await store.get_state(sid)
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    by_seq = {e.sequence_number: e for e in events}
    for k, batches in returned.items():
        firsts = [seqs[0] for seqs in batches]
        assert firsts == sorted(firsts), "one task's appends are numbered in its order"
        for i, seqs in enumerate(batches):
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a batch is contiguous"
            for part, seq in enumerate(seqs):
                assert by_seq[seq].payload == {"task": k, "i": i, "part": part}
    assert sum(len(s) for b in returned.values() for s in b) == len(events)
    fresh = await _fresh_state(data, sid)
    assert cached.version == fresh.version == len(events)
    assert cached.model_dump() == fresh.model_dump()


async def test_each_append_of_a_round_is_judged_alone(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("custom", {"first": True}))
        same = new_event("custom", {"same": "id"})
        wrong = store.append(sid, new_event("custom", {"stale": True}), expected_seq=0)
        outcomes = await asyncio.gather(
            *(store.append(sid, new_event("custom", {"n": n})) for n in range(8)),
            wrong,
            *(store.append(sid, same) for _ in range(6)),
            return_exceptions=True,
        )
        events = await store.get_events(sid)
    assert isinstance(outcomes[8], ConcurrencyError), "a stale expected_seq fails alone"
    good = [o for i, o in enumerate(outcomes) if i != 8]
    assert all(isinstance(o, agentstore.Event) for o in good), good
    copies = {o.sequence_number for o in good[8:] if isinstance(o, agentstore.Event)}
    assert len(copies) == 1, "one id, one stored event, whoever of the round wrote it"
    assert len(events) == 1 + 8 + 1
    assert not any(e.payload.get("stale") for e in events)


async def test_a_cancelled_append_is_whole_or_absent_and_the_cache_stays_true(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)
        acked = 0
        enough = asyncio.Event()

        async def task(k: int) -> None:
            nonlocal acked
            for i in range(1000):
                batch = [new_event("custom", {"k": k, "i": i, "p": p}) for p in range(1 + k % 3)]
                await store.append_many(sid, batch)
                acked += 1
                if acked >= 100:
                    enough.set()

        tasks = [asyncio.create_task(task(k)) for k in range(TASKS)]
        await enough.wait()
        for t in tasks[::2]:
            t.cancel()  # mid-wait for a round, most of them
        await asyncio.sleep(0)
        for t in tasks[1::2]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # The cache may have been dropped (a cancelled append folds nothing): either way
        # what the store says must be what the log says.
        cached = await store.get_state(sid)
        events = await store.get_events(sid)
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    runs: dict[tuple[int, int], list[int]] = defaultdict(list)
    for e in events:
        runs[(e.payload["k"], e.payload["i"])].append(e.payload["p"])
    for (k, _), parts in runs.items():
        assert parts == list(range(1 + k % 3)), "a batch is all or nothing"
    fresh = await _fresh_state(data, sid)
    assert cached.model_dump() == fresh.model_dump()


async def test_closing_answers_every_waiting_append(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await agentstore.open(data)
    sid = (await store.create_session()).id
    acked: list[str] = []
    refused = 0
    started = asyncio.Event()

    async def task(k: int) -> None:
        nonlocal refused
        for i in range(10_000):
            event = new_event("custom", {"k": k, "i": i})
            try:
                await store.append(sid, event)
            except StoreClosedError:
                refused += 1
                return
            acked.append(event.id)
            if len(acked) >= 50:
                started.set()

    tasks = [asyncio.create_task(task(k)) for k in range(TASKS)]
    await started.wait()
    await store.close()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    assert refused == TASKS, "every task got a clear refusal once the store closed"
    async with agentstore.open(data) as store:
        stored = await store.get_events(sid)
    ids = [e.id for e in stored]
    assert set(acked) <= set(ids), "nothing acknowledged is lost"
    assert len(ids) - len(acked) <= TASKS, "at most the appends in flight are extra"


def _wait_for_acks(proc: subprocess.Popen[str], count: int) -> list[str]:
    return [expect_line(proc, "ack") + "\n" for _ in range(count)]


@pytest.mark.slow
async def test_sigkill_among_sixteen_appenders_of_one_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        session = await store.create_session(session_id="grouped")
    rng = random.Random(int.from_bytes(os.urandom(4)))
    seen = 0
    for round_no in range(10):
        base = 2 * (1000 * (round_no + 1))  # even seeds: mostly small payloads
        proc = start_worker("group", str(data), session.id, str(base), str(TASKS), str(SMALL))
        try:
            expect_line(proc, "ready")
            lines = _wait_for_acks(proc, rng.randrange(1, 200))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            lines += proc.stdout.read().splitlines(keepends=True)
        finally:
            finish(proc)
        acked: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
        for line in lines:
            parts = line.split()
            if line.endswith("\n") and len(parts) == 5 and parts[0] == "ack":
                acked[int(parts[1])][int(parts[2])] = (int(parts[3]), int(parts[4]))
        async with agentstore.open(data) as store:
            new = await store.get_events(session.id, from_seq=seen + 1)
            assert [e.sequence_number for e in new] == list(range(seen + 1, seen + 1 + len(new)))
            by_task: dict[int, dict[int, list[agentstore.Event]]] = defaultdict(
                lambda: defaultdict(list)
            )
            for event in new:
                by_task[event.payload["seed"]][event.payload["op"]].append(event)
            for task_seed in range(base, base + 2 * TASKS, 2):
                ops = by_task.get(task_seed, {})
                mine = acked.get(task_seed, {})
                assert list(ops) == list(range(len(ops))), "a task's operations in order"
                assert set(mine) <= set(ops), "every acknowledged operation is in the log"
                assert len(ops) - len(mine) <= 1, "at most the one in flight is extra"
                expected = plan(task_seed, SMALL)
                for index in range(len(ops)):
                    op = next(expected)
                    stored = ops[index]
                    assert [e.payload for e in stored] == [
                        payload(task_seed, index, part, size) for part, size in enumerate(op.sizes)
                    ], f"operation {index} of task {task_seed} is all or nothing"
                    seqs = [e.sequence_number for e in stored]
                    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
                    if index in mine:
                        assert mine[index] == (seqs[0], seqs[-1])
            seen += len(new)
            state = await store.get_state(session.id)
            assert state.event_count == seen
            report = await store.verify()
            assert report.ok, [str(p) for p in report.problems]


@pytest.mark.slow
async def test_sigkill_among_appenders_of_sixteen_sessions(tmp_path: Path) -> None:
    """Many logs synced per round (AIO where it works): nothing acknowledged is lost."""
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        for k in range(TASKS):
            await store.create_session(session_id=f"s{k}")
    rng = random.Random(int.from_bytes(os.urandom(4)))
    for run in range(6):
        proc = subprocess.Popen(
            [sys.executable, str(SESSIONS_WORKER), str(data), str(run), str(TASKS)],
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        try:
            expect_line(proc, "ready")
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(rng.randrange(1, 400))]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            lines += proc.stdout.read().splitlines(keepends=True)
        finally:
            finish(proc)
        acked: dict[tuple[int, int], tuple[int, int]] = {}
        for line in lines:
            parts = line.split()
            if line.endswith("\n") and len(parts) == 5 and parts[0] == "ack":
                acked[int(parts[1]), int(parts[2])] = (int(parts[3]), int(parts[4]))
        async with agentstore.open(data) as store:
            for k in range(TASKS):
                events = await store.get_events(f"s{k}")
                seqs = [e.sequence_number for e in events]
                assert seqs == list(range(1, len(events) + 1)), "no gap in a session's log"
                ops: dict[int, list[agentstore.Event]] = defaultdict(list)
                for event in events:
                    if event.payload["run"] == run:
                        ops[event.payload["i"]].append(event)
                assert list(ops) == list(range(len(ops))), "a task's operations in order"
                mine = {i: span for (task, i), span in acked.items() if task == k}
                assert set(mine) <= set(ops), "every acknowledged operation is in the log"
                assert len(ops) - len(mine) <= 1, "at most the one in flight is extra"
                for i, stored in ops.items():
                    assert [e.payload["part"] for e in stored] == list(
                        range(3 if i % 4 == 3 else 1)
                    ), f"operation {i} of task {k} is all or nothing"
                    if i in mine:
                        assert mine[i] == (stored[0].sequence_number, stored[-1].sequence_number)
            report = await store.verify()
            assert report.ok, [str(p) for p in report.problems]


async def test_a_cancelled_caller_waits_until_its_append_is_written(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("custom", {"n": 0}))
        view = store.backend._logs.peek(sid)  # type: ignore[attr-defined]
        assert view is not None
        # Hold the log (as a long write would) so the commit thread cannot finish the append.
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with view.mutex:
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(10)
        event = new_event("custom", {"n": 1})
        task = asyncio.create_task(store.append(sid, event))
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done(), "the caller waits for the append it started"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        holder.join()
        assert [e.id for e in await store.get_events(sid, from_seq=2)] == [event.id]


async def test_a_failed_sync_fails_only_its_own_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On sync threads, where the failure can be injected (`atomic.sync`); a failure the
    # kernel reports through AIO lands through the same undo (see test_file_commits.py).
    monkeypatch.setattr(commits, "USE_AIO", False)
    async with agentstore.open(tmp_path / "data", snapshot_interval=0) as store:
        sids = [(await store.create_session(session_id=f"s{k}")).id for k in range(8)]
        for sid in sids:
            await store.append(sid, new_event("custom", {"first": sid}))
        real_sync = atomic.sync

        def failing_sync(fd: int) -> None:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("s3.jsonl"):
                raise OSError(errno.EIO, "Input/output error")
            real_sync(fd)

        monkeypatch.setattr(atomic, "sync", failing_sync)
        outcomes = await asyncio.gather(
            *(store.append(sid, new_event("custom", {"i": i})) for i in range(4) for sid in sids),
            return_exceptions=True,
        )
        monkeypatch.setattr(atomic, "sync", real_sync)
        for index, outcome in enumerate(outcomes):
            if sids[index % 8] == "s3":
                assert isinstance(outcome, agentstore.StorageError), outcome
            else:
                assert isinstance(outcome, agentstore.Event), outcome
        assert len(await store.get_events("s3")) == 1, "nothing of a failed sync stays"
        after = await store.append("s3", new_event("custom", {"again": True}))
        assert after.sequence_number == 2
        for sid in sids:
            if sid != "s3":
                assert len(await store.get_events(sid)) == 5


async def test_deleting_sessions_while_others_are_in_flight_does_not_deadlock(
    tmp_path: Path,
) -> None:
    async with agentstore.open(tmp_path / "data", snapshot_interval=0) as store:
        busy = [(await store.create_session()).id for _ in range(8)]
        backend = store.backend
        stop = asyncio.Event()

        async def append_forever(sid: str) -> int:
            count = 0
            while not stop.is_set():
                await store.append(sid, new_event("custom", {"n": count}))
                count += 1
            return count

        async def create_and_delete() -> None:
            for k in range(40):
                sid = (await store.create_session()).id
                await store.append(sid, new_event("custom", {"k": k}))
                # A deletion takes the directory's lock, then the log's mutex: here of a
                # log that is in flight most of the time, while new logs are being opened.
                with pytest.raises(ConcurrencyError):
                    await backend.delete_session(busy[k % 8], expected_seq=0)
                await backend.delete_session(sid, expected_seq=1)
            stop.set()

        writers = [asyncio.create_task(append_forever(sid)) for sid in busy]
        await asyncio.wait_for(create_and_delete(), timeout=120)
        counts = await asyncio.wait_for(asyncio.gather(*writers), timeout=60)
        for sid, count in zip(busy, counts, strict=True):
            assert len(await store.get_events(sid)) == count


async def test_more_sessions_than_open_logs_all_append(tmp_path: Path) -> None:
    """Logs closed to stay under the open-file limit are reopened, even mid-pipeline."""
    from agentstore.backends.file.log import MAX_OPEN_LOGS

    async with agentstore.open(tmp_path / "data", snapshot_interval=0) as store:
        sids = [(await store.create_session()).id for _ in range(MAX_OPEN_LOGS + 44)]
        for round_no in range(3):
            stored = await asyncio.gather(
                *(store.append(sid, new_event("custom", {"r": round_no})) for sid in sids)
            )
            assert {e.sequence_number for e in stored} == {round_no + 1}
        for sid in sids[:: len(sids) // 10]:
            assert [e.payload["r"] for e in await store.get_events(sid)] == [0, 1, 2]

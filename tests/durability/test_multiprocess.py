"""Several processes on one data directory, appending at the same time."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import anyio
import pytest

import agentstore
from tests.durability.conftest import expect_line, finish, start_worker, tell

PROCS = 4
PER_PROC = 500


def _start_all(*argvs: tuple[str, ...]) -> list[subprocess.Popen[str]]:
    procs = [start_worker(*argv) for argv in argvs]
    for proc in procs:
        expect_line(proc, "ready")
    # Everyone is open and waiting: start them together so their appends overlap.
    for proc in procs:
        tell(proc, "go")
    return procs


@pytest.mark.slow
async def test_four_processes_one_session(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session(session_id="shared")
        # This process reads its own cache before and after the others append.
        assert (await store.get_state(session.id)).event_count == 0
        procs = _start_all(
            *(("multi", str(tmp_path), session.id, f"w{n}", str(PER_PROC)) for n in range(PROCS))
        )
        try:
            for proc in procs:
                expect_line(proc, "done")
            for proc in procs:
                tell(proc, "check")
            seen = [expect_line(proc, "state") for proc in procs]
            for proc in procs:
                assert proc.wait(timeout=60) == 0
        finally:
            for proc in procs:
                finish(proc)
        total = PROCS * PER_PROC
        # Every process's cache noticed the events the others appended.
        assert seen == [f"state {total} {total} {total}"] * PROCS
        state = await store.get_state(session.id)
        assert (state.event_count, state.version) == (total, total)
        events = await store.get_events(session.id)
        assert [e.sequence_number for e in events] == list(range(1, total + 1))
        assert len({e.id for e in events}) == total
        by_worker: dict[str, list[int]] = defaultdict(list)
        for event in events:
            by_worker[event.payload["w"]].append(event.payload["i"])
        # Each process's events are all there, in the order it appended them.
        assert by_worker == {f"w{n}": list(range(PER_PROC)) for n in range(PROCS)}
        report = await store.verify()
        assert report.ok, [str(p) for p in report.problems]
        assert (report.sessions, report.events) == (1, total)
    text = (tmp_path / "events" / "shared.jsonl").read_bytes()
    assert text.count(b"\n") == total, "one line per event: no line interleaved with another"


@pytest.mark.slow
async def test_four_processes_four_sessions(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        ids = [f"s{n}" for n in range(PROCS)]
        for sid in ids:
            await store.create_session(session_id=sid)
        procs = _start_all(*(("multi", str(tmp_path), sid, sid, str(PER_PROC)) for sid in ids))
        try:
            for proc in procs:
                expect_line(proc, "done")
                tell(proc, "check")
                assert expect_line(proc, "state") == f"state {PER_PROC} {PER_PROC} {PER_PROC}"
                assert proc.wait(timeout=60) == 0
        finally:
            for proc in procs:
                finish(proc)
        for sid in ids:
            events = await store.get_events(sid)
            assert [e.sequence_number for e in events] == list(range(1, PER_PROC + 1))
            assert [e.payload for e in events] == [{"w": sid, "i": i} for i in range(PER_PROC)]
        report = await store.verify()
        assert report.ok, [str(p) for p in report.problems]
        assert (report.sessions, report.events) == (PROCS, PROCS * PER_PROC)


async def test_session_creation_is_atomic_across_processes(tmp_path: Path) -> None:
    ids = [f"race-{n}" for n in range(25)]
    procs = _start_all(*(("create", str(tmp_path), *ids) for _ in range(PROCS)))
    try:
        results = [[expect_line(proc, "") for _ in ids] for proc in procs]
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            finish(proc)
    for sid in ids:
        outcomes = sorted(
            line.split()[0] for lines in results for line in lines if line.endswith(f" {sid}")
        )
        assert outcomes == ["exists"] * (PROCS - 1) + ["ok"], sid
    async with agentstore.open(tmp_path) as store:
        assert sorted(s.id for s in await store.list_sessions()) == sorted(ids)
        report = await store.verify()
        assert report.ok and report.sessions == len(ids)
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


async def test_appends_from_another_process_reach_this_cache(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session(session_id="observed")
        await store.append(session.id, agentstore.new_event("custom", {"w": "parent", "i": 0}))
        assert (await store.get_state(session.id)).event_count == 1  # now cached
        procs = _start_all(("multi", str(tmp_path), session.id, "child", "3"))
        try:
            expect_line(procs[0], "done")
            state = await store.get_state(session.id)
            assert (state.event_count, state.version) == (4, 4)
            assert state.data["custom"] == {"w": "child", "i": 2}
            # And the other way round: the child sees this process's next append.
            await store.append(session.id, agentstore.new_event("custom", {"w": "parent", "i": 1}))
            tell(procs[0], "check")
            assert expect_line(procs[0], "state") == "state 5 5 5"
        finally:
            finish(procs[0])


@pytest.mark.slow
async def test_readers_never_see_a_partial_or_unacknowledged_line(tmp_path: Path) -> None:
    """A read-only store reads while two processes append large events."""
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session(session_id="big")
    procs = [
        start_worker("kill", str(tmp_path), session.id, str(2 * n + 1), "flush") for n in range(2)
    ]
    reads = 0
    try:
        for proc in procs:
            expect_line(proc, "ready")
        async with agentstore.open(tmp_path, read_only=True) as reader:
            seen: list[agentstore.Event] = []
            with anyio.fail_after(60):
                while len(seen) < 200:
                    events = await reader.get_events(session.id, from_seq=len(seen) + 1)
                    reads += 1
                    # Whole events only, contiguous, and each equal to what its writer sent.
                    assert [e.sequence_number for e in events] == list(
                        range(len(seen) + 1, len(seen) + len(events) + 1)
                    )
                    seen += events
    finally:
        for proc in procs:
            finish(proc)
    async with agentstore.open(tmp_path) as store:
        final = await store.get_events(session.id)
        assert final[: len(seen)] == seen
        assert (await store.verify()).ok
    # It read while they wrote (how often depends on how the machine shares its cores).
    assert reads > 2


async def test_reader_never_sees_an_append_that_is_later_cut_back(tmp_path: Path) -> None:
    """A writer has written a whole line but not yet synced it; then its sync fails."""
    import fcntl
    import os

    async with agentstore.open(tmp_path) as store:
        session = await store.create_session(session_id="s")
        await store.append(session.id, agentstore.new_event("custom", {"i": 1}))
        log = tmp_path / "events" / "s.jsonl"
        line = log.read_bytes()
    async with agentstore.open(tmp_path, read_only=True) as reader:
        assert len(await reader.get_events("s")) == 1
        # Another writer, mid-append: lock held, a complete line written, sync pending.
        fd = os.open(log, os.O_RDWR | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.replace(b'"sequence_number":1', b'"sequence_number":2'))
            result: list[int] = []

            async def read() -> None:
                result.append(len(await reader.get_events("s")))

            async with anyio.create_task_group() as group:
                group.start_soon(read)
                await anyio.sleep(0.2)
                assert result == []  # waiting for the append to finish
                # The sync fails: the writer cuts its line back out, then unlocks.
                os.ftruncate(fd, len(line))
                fcntl.flock(fd, fcntl.LOCK_UN)
            assert result == [1]
        finally:
            os.close(fd)


@pytest.mark.slow
async def test_verify_while_another_process_appends(tmp_path: Path) -> None:
    """A live log verifies clean, snapshots included, however the appends interleave."""
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="live")
        # Seed 2: small payloads; the worker saves a snapshot every 7 events.
        proc = start_worker("kill", str(tmp_path), "live", "2", "fsync", "4096")
        try:
            expect_line(proc, "ready")
            expect_line(proc, "ack")
            seen = []
            for _ in range(30):
                report = await store.verify("live")
                assert report.ok, [str(p) for p in report.problems]
                seen.append(report.events)
                await anyio.sleep(0.01)
            for _ in range(10):
                report = await store.verify()  # every session, the snapshot check included
                assert report.ok, [str(p) for p in report.problems]
        finally:
            finish(proc)
    assert seen[-1] > seen[0]  # the log grew while it was checked

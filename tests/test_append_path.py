"""The append path's shortcuts keep what users rely on.

- Snapshots are a cache written after the append returns: a snapshot write that fails
  never fails the append that triggered it, and one that hangs holds up no append to the
  session; the store's own `get_state` of that session waits for it (it reads its own
  snapshots), and closing the store finishes it.
- A backend whose appends never suspend (memory) skips the session lock when nobody holds
  it: concurrent appends, batches, budgets and reads still give the state a full fold gives.
- A cold fold pauses the cyclic garbage collector while it works and restores it after.
"""

from __future__ import annotations

import gc
import logging
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked

import agentstore
from agentstore import Budget, Event, EventType, Metadata, State, Store, new_event
from agentstore.backends.base import AppendResult, PendingEvent, SnapshotRecord
from agentstore.backends.memory import MemoryBackend
from agentstore.errors import StorageError


class SuspendingMemory(MemoryBackend):
    """Memory whose appends yield to the loop first, as every I/O backend's do."""

    appends_never_suspend = False

    async def append(
        self, session_id: str, batch: list[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        await anyio.lowlevel.checkpoint()
        return await super().append(session_id, batch, expected_seq)


class FailingSnapshots(MemoryBackend):
    """Every snapshot write fails."""

    attempts = 0

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        self.attempts += 1
        raise StorageError("disk full (test)")


def _hanging(base: type[MemoryBackend]) -> type[MemoryBackend]:
    class Hanging(base):  # type: ignore[valid-type,misc]
        """Snapshot writes wait until the test lets them go."""

        def __init__(self) -> None:
            super().__init__()
            self.started = anyio.Event()
            self.release = anyio.Event()

        async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
            self.started.set()
            await self.release.wait()
            await super().save_snapshot(snapshot)

    return Hanging


async def test_a_failing_snapshot_write_does_not_fail_the_append(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FailingSnapshots()
    async with Store(backend, snapshot_interval=5) as store:
        sid = (await store.create_session()).id
        with caplog.at_level(logging.WARNING, logger="agentstore"):
            for i in range(12):
                stored = await store.append(sid, new_event(EventType.TOOL_CALLED, {"i": i}))
                assert stored.sequence_number == i + 1
            state = await store.get_state(sid)  # waits for the writes behind the appends
        assert backend.attempts == 2  # at 5 and at 10
        assert "no snapshot of session" in caplog.text
        assert [e.payload["i"] for e in await store.replay(sid)] == list(range(12))
        assert (state.version, state.tool_calls) == (12, 12)


@pytest.mark.parametrize("base", [MemoryBackend, SuspendingMemory], ids=["inline", "suspending"])
async def test_a_hanging_snapshot_write_holds_up_no_other_append(
    base: type[MemoryBackend],
) -> None:
    backend = _hanging(base)()
    async with Store(backend, snapshot_interval=3) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)
        await store.append_many(sid, [new_event("step") for _ in range(2)])
        states: list[State] = []

        async def read_state() -> None:
            states.append(await store.get_state(sid))

        with anyio.fail_after(10):
            third = await store.append(sid, new_event("step", {"n": 3}))  # returns at once
            await backend.started.wait()  # its snapshot is being written behind it
            # The session is free meanwhile: more appends go through, with no snapshot.
            fourth = await store.append(sid, new_event("step", {"n": 4}))
            assert (third.sequence_number, fourth.sequence_number) == (3, 4)
            assert await backend.load_snapshot(sid, store._states.reducer_id) is None
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_state)
                await wait_all_tasks_blocked()
                assert not states  # the store's own read waits for its snapshot
                backend.release.set()
        assert states[0].version == 4
        snap = await backend.load_snapshot(sid, store._states.reducer_id)
        assert snap is not None and snap.version == 3
        assert snap.state["version"] == 3  # the state as of the append, not of the write


async def test_closing_the_store_finishes_the_snapshot_writes_behind_its_appends(
    tmp_path: Path,
) -> None:
    async with agentstore.open(tmp_path, snapshot_interval=5) as store:
        sid = (await store.create_session()).id
        for i in range(5):
            await store.append(sid, new_event("step", {"i": i}))
        reducer_id = store._states.reducer_id
    # Closed right after the append that made the snapshot due: it was written first.
    async with agentstore.open(tmp_path) as reopened:
        snap = await reopened.backend.load_snapshot(sid, reducer_id)
    assert snap is not None and snap.version == 5


def test_off_asyncio_the_append_writes_its_snapshot_before_it_returns(tmp_path: Path) -> None:
    async def run() -> int | None:
        async with agentstore.open(tmp_path, snapshot_interval=3) as store:
            sid = (await store.create_session()).id
            for i in range(3):
                await store.append(sid, new_event("step", {"i": i}))
            snap = await store.backend.load_snapshot(sid, store._states.reducer_id)
            return None if snap is None else snap.version

    assert anyio.run(run, backend="trio") == 3  # no asyncio loop to write it behind


def _count(state: State, event: Event) -> State:
    """A user reducer: keeps the sequence numbers it saw, in order."""
    state = agentstore.default_reducer(state, event)
    seen = state.data.setdefault("seen", [])
    seen.append(event.sequence_number)
    return state


async def test_concurrent_appends_without_the_lock_fold_like_a_full_fold() -> None:
    backend = MemoryBackend()
    async with Store(backend, reducer=_count, snapshot_interval=7, cache_size=4) as store:
        sid = (await store.create_session(budget=Budget(max_tokens=10**9))).id
        await store.get_state(sid)

        async def writer(k: int) -> None:
            for i in range(30):
                if i % 10 == 0:
                    await store.append_many(sid, [new_event("step", {"k": k}) for _ in range(3)])
                elif i % 7 == 0:
                    meta = Metadata(tokens_in=1, tokens_out=1)
                    await store.append(sid, new_event(EventType.LLM_REQUEST, {"k": k}, meta))
                else:
                    await store.append(sid, new_event("step", {"k": k, "i": i}))
                if i % 4 == 0:
                    await store.get_state(sid)  # a fold that may suspend, under the lock
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            for k in range(8):
                tg.start_soon(writer, k)
        hot = await store.get_state(sid)
    async with Store(backend, reducer=_count, snapshot_interval=0, cache_size=0) as cold:
        full = await cold.get_state(sid)
    assert hot.version == full.version == 8 * (30 + 3 * 2)
    assert hot.data["seen"] == full.data["seen"] == list(range(1, hot.version + 1))
    assert hot.tokens == full.tokens
    assert hot.model_dump() == full.model_dump()


async def test_a_stored_event_changed_by_its_caller_leaves_the_state_alone() -> None:
    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)
        payload = {"tool": "search", "args": {"q": "x"}}
        meta = Metadata(call_id="c1", tool_name="search")
        stored = await store.append(sid, new_event(EventType.TOOL_CALLED, payload, meta))
        payload["args"]["q"] = "changed"  # the caller's own objects, after the append
        meta.tool_name = "changed"
        stored.payload["args"]["q"] = "changed too"
        state = await store.get_state(sid)
        assert state.data["tool_called"] == {"tool": "search", "args": {"q": "x"}}
        assert state.open_calls["c1"].name == "search"


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_cold_fold_pauses_the_collector_and_restores_it(enabled: bool) -> None:
    seen: list[bool] = []

    def spy(state: State, event: Event) -> State:
        seen.append(gc.isenabled())
        return agentstore.default_reducer(state, event)

    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("step") for _ in range(2500)])
        backend = store._backend  # a second store on the same memory, folding from cold
        async with Store(backend, reducer=spy, snapshot_interval=0, cache_size=0) as cold:
            was = gc.isenabled()
            try:
                if not enabled:
                    gc.disable()
                assert (await cold.get_state(sid)).version == 2500
                assert gc.isenabled() is enabled
            finally:
                if was:
                    gc.enable()
    assert len(seen) == 2500 and not any(seen)


_KILLED_IN_SNAPSHOT = """
import asyncio, os, signal, sys
import agentstore
from agentstore.backends.file.backend import FileBackend

async def die(self, snapshot):
    # The process dies while writing the snapshot of the 10th event, which is written
    # behind its append: that append has returned.
    print("snapshot", snapshot.version, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

FileBackend.save_snapshot = die

async def main():
    async with agentstore.open(sys.argv[1], snapshot_interval=10) as store:
        sid = (await store.create_session(session_id="s")).id
        await store.get_state(sid)
        for i in range(20):
            stored = await store.append(sid, agentstore.new_event("step", {"i": i}))
            print("acked", stored.sequence_number, flush=True)

asyncio.run(main())
"""


def test_a_process_killed_while_writing_a_snapshot_keeps_every_appended_event(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_SNAPSHOT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    lines = proc.stdout.split()
    assert lines[-2:] == ["snapshot", "10"]
    acked = [int(n) for word, n in zip(lines[::2], lines[1::2], strict=True) if word == "acked"]
    assert acked == list(range(1, 11))

    async def reopen() -> tuple[list[int], int]:
        async with agentstore.open(tmp_path) as store:
            events = await store.replay("s")
            return [e.payload["i"] for e in events], (await store.get_state("s")).version

    payloads, version = anyio.run(reopen)
    # Every acknowledged event, with nothing torn; the 11th, in flight when the process
    # died, may or may not have reached the log (it was never acknowledged).
    assert payloads in (list(range(10)), list(range(11)))
    assert version == len(payloads)


@pytest.mark.parametrize("where", ["memory", "file"])
async def test_a_store_that_only_writes_keeps_true_states_through_its_snapshots(
    tmp_path: Path, where: str
) -> None:
    """A writer that never reads: each snapshot folds from the log, concurrent appends and all."""
    target = "memory://" if where == "memory" else tmp_path / "data"
    async with agentstore.open(target, snapshot_interval=5) as store:
        sid = (await store.create_session()).id

        async def task(k: int) -> None:
            for i in range(12):
                usage = Metadata(input_tokens=k + 1, output_tokens=i, model="gpt-4o-mini")
                if i % 4 == 3:
                    await store.append_many(
                        sid, [new_event("custom", {"k": k, "i": i, "p": p}) for p in range(3)]
                    )
                else:
                    await store.append(sid, new_event("llm_response", {"k": k}, metadata=usage))

        async with anyio.create_task_group() as tg:
            for k in range(6):
                tg.start_soon(task, k)
        kept = await store.get_state(sid)
        events = await store.get_events(sid)
        async with Store(MemoryBackend(), snapshot_interval=0) as plain:
            await plain.import_session(await store.get_session(sid), events)
            folded = await plain.get_state(sid)
    assert kept.version == len(events) == 6 * (9 + 3 * 3)
    assert kept.model_dump() == folded.model_dump()

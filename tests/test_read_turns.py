"""Reads decode on the event loop in turns: across thread hops, cancelled, shared with others.

The file backend reads a log's bytes on a worker thread and decodes them on the loop, a
page at a time (`backends/file/reading.py`); the in-memory backend builds events in
pages. These tests shrink the bytes per hop so that an ordinary session crosses many hops.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import pytest

import agentstore
from agentstore import EventType, Store, new_event
from agentstore._turns import Turns
from agentstore.backends.file import reading

N = 3000
T = TypeVar("T")


def _events(start: int, count: int) -> list[agentstore.Event]:
    kinds = (EventType.TOOL_CALLED, EventType.TOOL_RESULT, EventType.LLM_RESPONSE)
    return [
        new_event(kinds[i % 3], {"step": i, "text": "x" * (i % 500)})
        for i in range(start, start + count)
    ]


async def _fill(store: Store) -> str:
    sid = (await store.create_session()).id
    for start in range(0, N, 1000):
        await store.append_many(sid, _events(start, 1000))
    return sid


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def small_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    # A log of ~0.8 MiB read 64 KiB per hop: a dozen hops, each ending mid-page.
    monkeypatch.setattr(reading, "HOP_BYTES", 64 * 1024)
    monkeypatch.setattr("agentstore.backends.file.lines.READ_CHUNK", 48 * 1024 + 17)


async def test_a_read_across_many_hops_returns_what_one_read_would(
    tmp_path: Path, small_hops: None
) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = await _fill(store)
    written = (tmp_path / "events" / f"{sid}.jsonl").read_bytes().splitlines()
    assert len(written) == N
    async with agentstore.open(tmp_path) as store:
        everything = await store.replay(sid)
        assert [e.sequence_number for e in everything] == list(range(1, N + 1))
        assert [e.payload["step"] for e in everything] == list(range(N))
        got = await store.replay(sid, from_seq=777, limit=1500)
        assert [e.sequence_number for e in got] == list(range(777, 2277))
        got = await store.replay(sid, from_seq=1000, to_seq=2100)
        assert got == everything[999:2100]
        got = await store.replay(sid, types=["llm_response"], from_seq=10, limit=700)
        assert [e.sequence_number for e in got] == list(range(12, 12 + 3 * 700, 3))
        until = everything[2500].timestamp
        assert until is not None
        got = await store.replay(sid, until=until)
        assert got == [e for e in everything if e.timestamp is not None and e.timestamp <= until]
        # The offsets a read learns (checkpoints) serve later reads that start mid-log.
        assert await store.replay(sid, from_seq=N - 1) == everything[-2:]
        state = await store.get_state(sid)
        assert state.version == N


@pytest.mark.parametrize("after_turns", [0, 1, 3, 10, 40])
async def test_a_cancelled_read_leaves_no_descriptor_open(
    tmp_path: Path, small_hops: None, after_turns: int
) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = await _fill(store)
        await store.replay(sid)  # the session's log is open from here on
        await store.get_state(sid)  # and the snapshot writes behind the fill are done
        before = _open_descriptors()
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.replay, sid)
            for _ in range(after_turns):
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
        assert _open_descriptors() == before
        assert len(await store.replay(sid)) == N  # and the store reads on


async def _while_others_step(work: Awaitable[T]) -> tuple[T, int]:
    """Await `work` beside a task that only yields to the loop; return how often it ran."""
    steps = 0
    done = False

    async def other() -> None:
        nonlocal steps
        while not done:
            steps += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await anyio.lowlevel.checkpoint()
        started = steps
        result = await work
        done = True
    return result, steps - started


@pytest.mark.parametrize("in_memory", [False, True])
async def test_other_tasks_run_while_a_long_read_decodes(tmp_path: Path, in_memory: bool) -> None:
    # A read of thousands of events takes turns: a task that only ever yields to the loop
    # runs many times before the read returns (a read holding the loop would let it run
    # at most once per thread hop).
    opened = agentstore.open(in_memory=True) if in_memory else agentstore.open(tmp_path)
    async with opened as store:
        sid = await _fill(store)
        if not in_memory:
            await store.replay(sid, to_seq=1)  # the log is open: the read is one hop
        got, during = await _while_others_step(store.replay(sid))
        assert len(got) == N
        assert during >= 3


@pytest.mark.parametrize("in_memory", [False, True])
async def test_other_tasks_run_while_a_cold_state_folds_many_pages(
    tmp_path: Path, in_memory: bool
) -> None:
    # A cold get_state of thousands of events reads and folds them a page at a time; its
    # turns count across pages, so short page reads that never yield still add up.
    opened = agentstore.open(in_memory=True) if in_memory else agentstore.open(tmp_path)
    async with opened as store:
        sid = (await store.create_session()).id
        for _ in range(10):
            await store.append_many(sid, [new_event("custom", {"i": i}) for i in range(1000)])
        await store.get_state(sid)  # the snapshot writes behind the appends are done
        cold = Store(store._backend, cache_size=0, snapshot_interval=0)  # no cache: a cold fold
        await cold
        state, during = await _while_others_step(cold.get_state(sid))
        assert state.version == 10_000
        assert during >= 5
        cold._closed = True  # shares the backend: do not close it twice


async def test_a_task_whose_timer_expired_runs_before_the_next_slice() -> None:
    # An agent's other task asleep on a short timer (a heartbeat, a timeout) must run at
    # the first turn after its timer expired, not a whole slice later: two passes of the
    # loop resumed the long work ahead of it (the timer's callback only queues its step).
    order: list[str] = []

    async def sleeper() -> None:
        await anyio.sleep(0.0005)
        order.append("timer")

    async def long_work() -> None:
        turns = Turns(budget=0.005)  # each slice outlasts the timer
        for slice_number in range(3):
            order.append(f"slice {slice_number}")
            while not turns.due():
                pass
            await turns.take()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await anyio.lowlevel.checkpoint()  # the sleeper's timer is set before the work
        tg.start_soon(long_work)
    assert order[:3] == ["slice 0", "timer", "slice 1"]

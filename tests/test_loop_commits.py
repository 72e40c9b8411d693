"""Durable appends committed on the event loop's thread (`loopcommits.py`)."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import StorageError, new_event
from agentstore.backends.file import FileBackend, aiosync, loopcommits


def _landed_on_loop(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    landed: list[Any] = []
    real = loopcommits.LoopCommits._land

    def land(self: Any, flight: Any) -> None:
        landed.append(flight)
        real(self, flight)

    monkeypatch.setattr(loopcommits.LoopCommits, "_land", land)
    return landed


async def _sessions_committing_on_the_loop(store: agentstore.Store, count: int) -> list[str]:
    """`count` new sessions with their logs open (an append each), so that their next
    appends commit on the loop; skips the test where they cannot (no Linux AIO)."""
    sids = [(await store.create_session()).id for _ in range(count)]
    for sid in sids:
        await store.append(sid, new_event("custom", {"i": -1}))
    backend = store.backend
    assert isinstance(backend, FileBackend)
    if backend._commits._here is None:
        pytest.skip("no Linux AIO with eventfd here")
    return sids


async def test_concurrent_sessions_commit_on_the_loop_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landed = _landed_on_loop(monkeypatch)
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        sids = [(await store.create_session()).id for _ in range(8)]

        async def task(sid: str) -> list[int]:
            return [
                (await store.append(sid, new_event("custom", {"i": i}))).sequence_number
                for i in range(25)
            ]

        assert await asyncio.gather(*(task(sid) for sid in sids)) == [list(range(1, 26))] * 8
        if isinstance(store.backend, FileBackend) and store.backend._commits._here is None:
            pytest.skip("no Linux AIO with eventfd here: every append took the commit thread")
        assert landed  # most appends landed on the loop (a session's first opens its log)
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        for sid in sids:
            assert [e.payload["i"] for e in await store.get_events(sid)] == list(range(25))
        assert (await store.verify()).ok


async def test_a_sync_the_kernel_fails_is_cut_back_and_never_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = loopcommits.LoopCommits._synced
    failures: list[OSError] = []

    def synced(self: Any, finished: list[tuple[Any, OSError | None]]) -> None:
        # The kernel's answer for the next sync is an I/O error (AIO's event res < 0).
        real(self, [(flight, failures.pop() if failures else err) for flight, err in finished])

    monkeypatch.setattr(loopcommits.LoopCommits, "_synced", synced)  # bound when it starts
    async with agentstore.open(tmp_path) as store:
        backend = store.backend
        assert isinstance(backend, FileBackend)
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))  # opens the log
        if backend._commits._here is None:
            pytest.skip("no Linux AIO with eventfd here")
        log = tmp_path / "events" / "s.jsonl"
        before = log.read_bytes()
        failures.append(OSError(errno.EIO, "Input/output error"))
        with pytest.raises(StorageError, match="nothing was appended"):
            await store.append("s", new_event("custom", {"lost": True}))
        assert not failures  # it went through the loop's AIO path
        assert log.read_bytes() == before  # cut back out
        stored = await store.append("s", new_event("custom", {"i": 1}))
        assert stored.sequence_number == 2
    async with agentstore.open(tmp_path) as store:
        assert [e.payload for e in await store.get_events("s")] == [{"i": 0}, {"i": 1}]
        assert (await store.verify()).ok


def test_a_loop_closed_with_an_append_in_flight_does_not_lock_its_log(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(agentstore.open(tmp_path))
    loop.run_until_complete(store.create_session(session_id="s"))
    loop.run_until_complete(store.append("s", new_event("custom", {"i": 0})))
    backend = store.backend
    assert isinstance(backend, FileBackend)
    if backend._commits._here is None:
        loop.run_until_complete(store.close())
        loop.close()
        pytest.skip("no Linux AIO with eventfd here")
    task = loop.create_task(store.append("s", new_event("custom", {"i": 1})))
    loop.run_until_complete(asyncio.sleep(0))  # written and submitted, not landed
    assert backend._commits._here._in_flight
    loop.set_exception_handler(lambda *_: None)  # "Task was destroyed but it is pending!"
    loop.close()  # abruptly: the task never finishes, its sync is never reaped there
    del task

    async def later() -> list[Any]:
        # Another loop on the same thread: the flight is landed first, then it appends.
        await store.append("s", new_event("custom", {"i": 2}))
        events = [e.payload for e in await store.get_events("s")]
        await store.close()
        return events

    assert asyncio.run(later()) == [{"i": 0}, {"i": 1}, {"i": 2}]


async def test_a_full_aio_context_syncs_the_rest_on_threads_and_keeps_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The smallest context the kernel makes (it rounds up: 16 syncs or so on 2 CPUs).
    monkeypatch.setattr(aiosync, "_MAX_EVENTS", 1)
    on_threads: list[Any] = []
    real = loopcommits.LoopCommits._land_after

    def land_after(self: Any, flight: Any, done: object) -> None:
        on_threads.append(flight)
        real(self, flight, done)

    monkeypatch.setattr(loopcommits.LoopCommits, "_land_after", land_after)
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        sids = await _sessions_committing_on_the_loop(store, 200)
        backend = store.backend
        assert isinstance(backend, FileBackend)

        async def task(sid: str) -> None:
            for i in range(5):
                await store.append(sid, new_event("custom", {"i": i}))

        await asyncio.gather(*(task(sid) for sid in sids))
        if not on_threads:
            pytest.skip("the kernel's smallest AIO context holds 200 syncs here")
        here = backend._commits._here
        assert here is not None and not here._closed  # still committing on the loop
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        for sid in sids:
            assert [e.payload["i"] for e in await store.get_events(sid)] == list(range(-1, 5))


async def test_flights_written_while_syncs_run_wait_for_one_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While syncs are in flight, the flights written meanwhile wait for one of them to end
    # and then go together (one `io_submit`, from `_on_synced`): appends spread over the
    # loop's turns (the gRPC server's clients) share rounds as tasks of one turn do. A
    # round per turn cost the server a tenth of its appends a second.
    # (Or `HOLD_S` after the first was held, if none has ended: `_held_long`.)
    ending: list[bool] = [False]

    def marking(real: Any) -> Any:
        def wrapped(self: Any) -> None:
            ending[0] = True
            try:
                real(self)
            finally:
                ending[0] = False

        return wrapped

    rounds: list[tuple[int, bool, int]] = []  # (syncs in flight, after one ended, flights)
    real_submit = aiosync.AioSyncer.submit

    def submit(self: Any, items: Any) -> Any:
        rounds.append((len(self._pending), ending[0], len(items)))
        return real_submit(self, items)

    engine = loopcommits.LoopCommits
    for name in ("_on_synced", "_held_long"):
        monkeypatch.setattr(engine, name, marking(getattr(engine, name)))
    monkeypatch.setattr(aiosync.AioSyncer, "submit", submit)
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        sids = await _sessions_committing_on_the_loop(store, 8)
        rounds.clear()

        async def task(sid: str, turn: int) -> None:
            for _ in range(turn):  # start in different turns of the loop
                await asyncio.sleep(0)
            for i in range(20):
                await store.append(sid, new_event("custom", {"i": i}))

        await asyncio.gather(*(task(sid, turn) for turn, sid in enumerate(sids)))
        assert rounds
        # A round beside syncs in flight goes only once one of them ended (or once held
        # `HOLD_S`), never straight from the append.
        assert [r for r in rounds if r[0] and not r[1]] == []
        assert max(flights for *_, flights in rounds) > 1  # and rounds are shared
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        for sid in sids:
            assert [e.payload["i"] for e in await store.get_events(sid)] == list(range(-1, 20))

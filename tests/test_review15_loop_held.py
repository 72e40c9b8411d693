"""Review 15 (loop commits, c1ab011): flights held for the next sync round always go.

Since c1ab011 a flight written on the loop while syncs are in flight is held (written,
its log's mutex and `flock` taken, its sync not submitted) until one of those syncs ends,
and then goes with every flight held meanwhile. A held flight that nobody submits keeps
its log locked: other processes wait on it for ever. These tests hold flights for real
(tasks of one turn of the loop: the first one's sync goes at once, the others wait) and
then take away what submits them: the store closed at once, the loop closed abruptly,
the loop blocked by a synchronous call while another process needs the log.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import StoreClosedError, new_event
from agentstore.backends.file import FileBackend

_SESSIONS = 8

_APPEND = textwrap.dedent(
    """
    import asyncio, sys
    import agentstore
    from agentstore import new_event

    async def main():
        async with agentstore.open(sys.argv[1], snapshot_interval=0) as store:
            await store.append(sys.argv[2], new_event("custom", {"from": "elsewhere"}))

    asyncio.run(main())
    """
)


def _other_process_appends(data: Path, sid: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _APPEND, str(data), sid],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _engine(store: agentstore.Store) -> Any:
    backend = store.backend
    assert isinstance(backend, FileBackend)
    return backend._commits._here


async def _opened(store: agentstore.Store) -> list[str]:
    sids = [f"s-{k}" for k in range(_SESSIONS)]
    for sid in sids:
        await store.create_session(session_id=sid)
        await store.append(sid, new_event("custom", {"i": 0}))  # its log open here
    return sids


async def _read(data: Path, sid: str) -> list[dict[str, Any]]:
    async with agentstore.open(data, snapshot_interval=0) as store:
        return [e.payload for e in await store.get_events(sid)]


def _payloads(data: Path, sid: str) -> list[dict[str, Any]]:
    return asyncio.run(_read(data, sid))


_APPENDS = 40
_TURNS = 20_000


async def _appending_until_held(
    store: agentstore.Store, sids: list[str], here: Any
) -> tuple[dict[str, list[int]], list[asyncio.Future[None]]]:
    """Start `_appending` on each session, and run the loop a turn at a time until the
    engine `here` holds flights for the next round (or `_TURNS` turns have passed)."""
    acked: dict[str, list[int]] = {sid: [] for sid in sids}
    tasks = [asyncio.ensure_future(_appending(store, sid, acked[sid])) for sid in sids]
    for _ in range(_TURNS):
        await asyncio.sleep(0)
        if here._to_submit:
            break
    return acked, tasks


async def _appending(store: agentstore.Store, sid: str, acked: list[int]) -> None:
    """Append i = 1, 2, ... to `sid` one after another, noting each acknowledged."""
    for i in range(1, _APPENDS + 1):
        await store.append(sid, new_event("custom", {"i": i}))
        acked.append(i)


def _numbers(payloads: list[dict[str, Any]]) -> list[int]:
    return [p["i"] for p in payloads if "i" in p]


def test_flights_held_when_their_loop_is_closed_abruptly_still_land(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(agentstore.open(tmp_path, snapshot_interval=0))
    sids = loop.run_until_complete(_opened(store))
    here = _engine(store)
    if here is None:
        loop.run_until_complete(store.close())
        loop.close()
        pytest.skip("no Linux AIO with eventfd here")
    acked: dict[str, list[int]] = {sid: [] for sid in sids}
    tasks = [loop.create_task(_appending(store, sid, acked[sid])) for sid in sids]
    for _ in range(_TURNS):  # a turn at a time, until flights are held
        loop.run_until_complete(asyncio.sleep(0))
        if here._to_submit:
            break
    held = [flight.group.view.session_id for flight in here._to_submit]
    assert held, "no flight was held for the next round"
    loop.set_exception_handler(lambda *_: None)  # "Task was destroyed but it is pending!"
    loop.close()  # abruptly: nothing on it will ever submit the held syncs
    del tasks
    # Another process appends to a session whose flight was held: it needs the log's
    # lock, which only a landing releases.
    other = _other_process_appends(tmp_path, held[-1])
    try:
        _, err = other.communicate(timeout=30)
    finally:
        other.kill()
    assert other.returncode == 0, err.decode()
    for sid in sids:
        payloads = _payloads(tmp_path, sid)
        numbers = _numbers(payloads)
        assert numbers == list(range(len(numbers)))  # 0, 1, ... with no gap
        assert len(numbers) - 1 in (len(acked[sid]), len(acked[sid]) + 1)  # + one in flight
        if sid == held[-1]:
            assert len(numbers) == len(acked[sid]) + 2  # its held flight landed
            assert payloads[-1] == {"from": "elsewhere"}


async def test_a_store_closed_while_flights_are_held_answers_every_append(
    tmp_path: Path,
) -> None:
    store = await agentstore.open(tmp_path, snapshot_interval=0)
    sids = await _opened(store)
    here = _engine(store)
    if here is None:
        await store.close()
        pytest.skip("no Linux AIO with eventfd here")
    acked, tasks = await _appending_until_held(store, sids, here)
    assert here._to_submit, "no flight was held for the next round"
    closing = asyncio.ensure_future(store.close())
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    await asyncio.wait_for(closing, 30)
    for sid, outcome in zip(sids, outcomes, strict=True):
        assert isinstance(outcome, StoreClosedError), outcome
        # Every append was answered: stored if acknowledged, absent if refused.
        assert _numbers(await _read(tmp_path, sid)) == [0, *acked[sid]]


async def test_a_held_flight_is_released_while_its_loop_is_blocked(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        sids = await _opened(store)
        here = _engine(store)
        if here is None:
            pytest.skip("no Linux AIO with eventfd here")
        _, tasks = await _appending_until_held(store, sids, here)
        held = [flight.group.view.session_id for flight in here._to_submit]
        assert held, "no flight was held for the next round"
        # The loop blocked (a synchronous call) with flights held: another process's
        # append to one of their logs goes through while it stays blocked.
        other = _other_process_appends(tmp_path, held[-1])
        try:
            # The loop's thread blocked in this wait, on purpose.
            done = other.wait(timeout=30)
        finally:
            other.kill()
            _, err = other.communicate()
        assert done == 0, err.decode()
        await asyncio.gather(*tasks)
        for sid in sids:
            payloads = [e.payload for e in await store.get_events(sid)]
            assert _numbers(payloads) == list(range(_APPENDS + 1))
            assert payloads.count({"from": "elsewhere"}) == (1 if sid == held[-1] else 0)

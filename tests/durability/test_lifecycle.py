"""Sessions deleted or re-created under a running store, closing mid-append, live waits.

Two stores on one data directory stand for two processes where a second process changes
nothing (each store has its own file backend, views of the logs and state cache); the
cross-process tests in test_multiprocess.py and test_kill.py use real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import agentstore
from agentstore import (
    ConcurrencyError,
    SessionNotFoundError,
    StoreClosedError,
    new_event,
)
from agentstore.backends._wakeups import AppendRegistry
from agentstore.backends.file import FileBackend
from tests.durability.conftest import expect_line, finish, start_worker, tell


async def test_a_session_deleted_elsewhere_is_not_served_from_a_cache(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as one, agentstore.open(tmp_path) as two:
        await one.create_session(session_id="s")
        await one.append("s", new_event("tool_called", {"old": True}))
        assert (await one.get_state("s")).tool_calls == 1
        await two.delete_session("s")
        with pytest.raises(SessionNotFoundError):
            await one.get_state("s")
        with pytest.raises(SessionNotFoundError):
            await one.append("s", new_event("custom"))
        with pytest.raises(SessionNotFoundError):
            await one.get_events("s")


async def test_a_session_created_again_elsewhere_is_never_the_old_one(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as one, agentstore.open(tmp_path) as two:
        await one.create_session(session_id="s")
        await one.append("s", new_event("tool_called", {"old": True}))
        assert (await one.get_state("s")).tool_calls == 1
        await two.delete_session("s")
        await two.create_session(session_id="s")
        await two.append("s", new_event("custom", {"new": True}))  # as many events as before
        # `one` may say the session it knew is gone, or serve the new one: never the old.
        for _ in range(2):
            try:
                state = await one.get_state("s")
            except SessionNotFoundError:
                continue
            assert (state.event_count, state.tool_calls) == (1, 0)
        assert [e.payload for e in await one.get_events("s")] == [{"new": True}]
        # An append lands in the new session, after its event.
        stored = await one.append("s", new_event("custom", {"from": "one"}))
        assert stored.sequence_number == 2
        assert [e.payload for e in await two.get_events("s")] == [{"new": True}, {"from": "one"}]


async def test_a_follow_stream_notices_its_session_was_deleted(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as one, agentstore.open(tmp_path) as two:
        await one.create_session(session_id="s")
        await one.append("s", new_event("custom", {"i": 0}))
        seen: list[int] = []

        async def follow() -> None:
            async for event in one.stream("s", follow=True):
                seen.append(event.sequence_number)
                await two.delete_session("s")  # while `one` follows it

        with anyio.fail_after(10), pytest.raises(SessionNotFoundError):
            await follow()
        assert seen == [1]


async def test_wait_for_append_wakes_at_once_for_another_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two backends of one data directory in one process: woken, not polled."""
    one, two = FileBackend(tmp_path), FileBackend(tmp_path)
    async with agentstore.open(one) as a, agentstore.open(two) as b:
        await a.create_session(session_id="s")
        # Make polling useless: the waiting backend's own look at the log always says
        # "nothing new" until it has been woken, so only the notification can end the wait.
        woken: list[int] = []
        real_last_seq = two.last_seq

        async def last_seq_seen_only_when_woken(session_id: str) -> int:
            return await real_last_seq(session_id) if woken else 0

        monkeypatch.setattr(two, "last_seq", last_seq_seen_only_when_woken)
        real_waiting = AppendRegistry.waiting

        @contextlib.contextmanager
        def waiting(root: str, session_id: str) -> Iterator[asyncio.Event | None]:
            with real_waiting(root, session_id) as event:
                assert event is not None
                yield event
                if event.is_set():
                    woken.append(1)

        monkeypatch.setattr(AppendRegistry, "waiting", waiting)
        waiter = asyncio.ensure_future(two.wait_for_append("s", 0))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await a.append("s", new_event("custom"))
        assert await asyncio.wait_for(waiter, 10) == 1
        assert woken
        assert await b.get_events("s")


async def test_close_while_appends_wait_refuses_them_and_writes_nothing_half(
    tmp_path: Path,
) -> None:
    store = await agentstore.open(tmp_path, snapshot_interval=0)
    sessions = [f"s{i}" for i in range(8)]
    for sid in sessions:
        await store.create_session(session_id=sid)

    async def append(sid: str, i: int) -> str:
        try:
            await store.append_many(sid, [new_event("custom", {"i": i, "k": k}) for k in range(3)])
        except StoreClosedError:
            return "closed"
        return "ok"

    tasks = [asyncio.ensure_future(append(sid, i)) for i in range(20) for sid in sessions]
    await asyncio.sleep(0)
    await store.close()
    outcomes = await asyncio.gather(*tasks)
    assert set(outcomes) <= {"ok", "closed"} and "closed" in outcomes
    async with agentstore.open(tmp_path) as reopened:
        assert (await reopened.verify()).ok
        written = 0
        for sid in sessions:
            written += len(await reopened.get_events(sid))
    assert written == 3 * outcomes.count("ok")


async def test_delete_with_expected_seq_loses_to_an_append(tmp_path: Path) -> None:
    """What prune relies on: a session appended to after it was chosen is not deleted."""
    async with agentstore.open(tmp_path) as one, agentstore.open(tmp_path) as two:
        await one.create_session(session_id="s")
        await one.append("s", new_event("custom"))
        chosen = await two.backend.last_seq("s")
        await one.append("s", new_event("custom"))
        with pytest.raises(ConcurrencyError):
            await two.backend.delete_session("s", expected_seq=chosen)
        assert len(await two.get_events("s")) == 2
        await two.backend.delete_session("s", expected_seq=chosen + 1)
        with pytest.raises(SessionNotFoundError):
            await one.get_session("s")


async def test_delete_with_expected_seq_holds_the_lock_appends_take(tmp_path: Path) -> None:
    """A writer process holds the log's lock; the delete waits for it and sees its event."""
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        await store.create_session(session_id="s")
    proc = start_worker("multi", str(data), "s", "w", "200")
    try:
        expect_line(proc, "ready")
        tell(proc, "go")
        async with agentstore.open(data) as store:
            deleted_at = None
            while deleted_at is None:
                seen = await store.backend.last_seq("s")
                try:
                    await store.backend.delete_session("s", expected_seq=seen)
                    deleted_at = seen
                except ConcurrencyError:
                    continue
        # The deletion happened at a moment when the log held exactly `deleted_at`
        # events; the worker's later appends fail instead of resurrecting the session.
        proc.wait(timeout=60)
    finally:
        finish(proc)
    async with agentstore.open(data) as store:
        with pytest.raises(SessionNotFoundError):
            await store.get_session("s")
        assert (await store.verify()).ok

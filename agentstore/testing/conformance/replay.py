"""Replay filters and live streams."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import pytest

from agentstore import Event, EventType, InvalidEventError, InvalidInputError, Store, new_event
from agentstore.testing.conformance.builders import mixed_events


async def _session_with(store: Store, n: int) -> tuple[str, list[Event]]:
    session = await store.create_session()
    return session.id, await store.append_many(session.id, mixed_events(n))


class ReplayContract:
    """The conformance tests of `replay` (see `agentstore.testing.conformance`)."""

    async def test_replay_everything(self, store: Store) -> None:
        sid, stored = await _session_with(store, 20)
        assert await store.replay(sid) == stored

    async def test_replay_seq_bounds_are_inclusive(self, store: Store) -> None:
        sid, _ = await _session_with(store, 20)
        got = await store.replay(sid, from_seq=4, to_seq=6)
        assert [e.sequence_number for e in got] == [4, 5, 6]
        assert await store.replay(sid, from_seq=21) == []
        assert [e.sequence_number for e in await store.replay(sid, to_seq=2)] == [1, 2]

    async def test_replay_types(self, store: Store) -> None:
        sid, stored = await _session_with(store, 40)
        got = await store.replay(sid, types=[EventType.TOOL_CALLED, "cache_hit"])
        assert got == [e for e in stored if e.type in ("tool_called", "cache_hit")]
        assert await store.replay(sid, types=["error"]) == [e for e in stored if e.type == "error"]
        with pytest.raises(InvalidEventError):
            await store.replay(sid, types=["Not A Type"])

    async def test_replay_time_bounds_are_inclusive(self, store: Store) -> None:
        sid, stored = await _session_with(store, 10)
        since, until = stored[3].timestamp, stored[6].timestamp
        assert since is not None and until is not None
        got = await store.replay(sid, since=since, until=until)
        assert [e.sequence_number for e in got] == [
            e.sequence_number
            for e in stored
            if since <= e.timestamp <= until  # type: ignore[operator]
        ]
        assert got[0].timestamp == since and got[-1].timestamp == until
        with pytest.raises(InvalidInputError, match="timezone-aware"):
            await store.replay(sid, since=datetime(2026, 1, 1))

    async def test_replay_limit_and_combined(self, store: Store) -> None:
        sid, stored = await _session_with(store, 50)
        got = await store.replay(sid, types=["custom", "error"], from_seq=5, limit=3)
        expected = [e for e in stored if e.type in ("custom", "error") and e.sequence_number >= 5]
        assert got == expected[:3]
        assert await store.replay(sid, limit=0) == []

    async def test_replay_time_window_after_the_end(self, store: Store) -> None:
        sid, stored = await _session_with(store, 5)
        last = stored[-1].timestamp
        assert last is not None
        later = last + timedelta(hours=1)
        assert await store.replay(sid, since=later) == []

    async def test_stream_without_follow(self, store: Store) -> None:
        sid, stored = await _session_with(store, 2500)  # more than one page
        got = [e async for e in store.stream(sid)]
        assert got == stored
        assert [e async for e in store.stream(sid, from_seq=2400)] == stored[2399:]

    async def test_stream_follow_sees_appends_from_another_task(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", 0))
        seen: list[int] = []
        done = anyio.Event()

        async def follower() -> None:
            async for event in store.stream(session.id, follow=True):
                seen.append(event.payload)
                if len(seen) == 5:
                    done.set()
                    return

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follower)
                for i in range(1, 5):
                    await store.append(session.id, new_event("custom", i))
                await done.wait()
        assert seen == [0, 1, 2, 3, 4]

    async def test_cancelling_a_follower_ends_it_cleanly(self, store: Store) -> None:
        session = await store.create_session()
        started = anyio.Event()

        async def follower() -> None:
            started.set()
            async for _ in store.stream(session.id, follow=True):
                pass

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follower)
                await started.wait()
                tg.cancel_scope.cancel()
        # The store still works afterwards.
        await store.append(session.id, new_event("custom", 1))

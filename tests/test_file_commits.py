"""The file backend's commit path: answers handed to an event loop, syncs through AIO."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

import agentstore
from agentstore.backends.file.aiosync import AioSyncer
from agentstore.backends.file.inbox import LoopInbox


async def test_posts_before_the_loop_drains_are_handed_over_once_in_order() -> None:
    loop = asyncio.get_running_loop()
    calls: list[list[int]] = []
    inbox: LoopInbox[int] = LoopInbox(loop, calls.append)
    inbox.post([1, 2])
    inbox.post([3])  # the loop has not run yet: no second wake-up
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert calls == [[1, 2, 3]]
    inbox.post([4])
    await asyncio.sleep(0)
    assert calls == [[1, 2, 3], [4]]


async def test_posts_from_other_threads_arrive_in_the_order_posted() -> None:
    loop = asyncio.get_running_loop()
    seen: list[int] = []
    done = asyncio.Event()

    def handle(items: list[int]) -> None:
        seen.extend(items)
        if len(seen) == 2000:
            done.set()

    inbox: LoopInbox[int] = LoopInbox(loop, handle)

    def poster(start: int) -> None:
        for i in range(start, start + 1000):
            inbox.post([i])

    threads = [threading.Thread(target=poster, args=(k * 1000,)) for k in range(2)]
    for thread in threads:
        thread.start()
    await asyncio.wait_for(done.wait(), timeout=30)
    for thread in threads:
        thread.join()
    # Each thread's items in its own order (the loop sees one thread's posts in order).
    assert [i for i in seen if i < 1000] == list(range(1000))
    assert [i for i in seen if i >= 1000] == list(range(1000, 2000))


def _synced_through_aio(paths: list[str]) -> tuple[list[tuple[str, OSError | None]], list[str]]:
    """fdatasync each file through an `AioSyncer`; return what came back and what was refused."""
    finished: list[tuple[str, OSError | None]] = []
    all_back = threading.Event()
    fds = [os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for path in paths]
    syncer: AioSyncer[str] | None = None

    def done(batch: list[tuple[str, OSError | None]]) -> None:
        finished.extend(batch)
        if len(finished) == expected:
            all_back.set()

    try:
        syncer = AioSyncer.open(done)
        if syncer is None:
            pytest.skip("no Linux AIO context on this machine")
        for fd in fds:
            os.write(fd, b'{"line": 1}\n')
        expected = len(paths)
        refused = syncer.submit(list(zip(fds, paths, strict=True)))
        expected -= len(refused)
        if expected:
            assert all_back.wait(timeout=30)
        return finished, refused
    finally:
        if syncer is not None:
            syncer.close()
        for fd in fds:
            os.close(fd)


def test_aio_syncs_every_file_and_hands_each_back(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"log{k}.jsonl") for k in range(20)]
    finished, refused = _synced_through_aio(paths)
    if refused:  # a kernel without FDSYNC through AIO: the commit thread uses threads
        assert refused == paths
        return
    assert sorted(finished) == sorted((path, None) for path in paths)


def test_a_file_the_kernel_cannot_sync_this_way_is_handed_back(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)
    syncer: AioSyncer[str] | None = AioSyncer.open(lambda batch: None)
    if syncer is None:
        pytest.skip("no Linux AIO context on this machine")
    try:
        # A pipe has no fsync: the kernel refuses the request, which comes back to sync
        # some other way (on a thread, where `fdatasync` raises a clear error).
        assert syncer.submit([(write, "pipe")]) == ["pipe"]
    finally:
        syncer.close()
        os.close(write)


async def test_many_sessions_through_aio_lose_nothing_and_stay_in_order(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data", snapshot_interval=0) as store:
        sids = [(await store.create_session()).id for _ in range(24)]

        async def task(sid: str) -> list[int]:
            return [
                (await store.append(sid, agentstore.new_event("custom", {"i": i}))).sequence_number
                for i in range(30)
            ]

        numbers = await asyncio.gather(*(task(sid) for sid in sids))
        assert numbers == [list(range(1, 31))] * len(sids)
    async with agentstore.open(tmp_path / "data", snapshot_interval=0) as store:
        for sid in sids:
            assert [e.payload["i"] for e in await store.get_events(sid)] == list(range(30))
        assert (await store.verify()).ok

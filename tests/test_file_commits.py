"""The file backend's hand-off of answers to an event loop (`agentstore.backends.file.inbox`)."""

from __future__ import annotations

import asyncio
import threading

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

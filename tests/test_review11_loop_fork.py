"""Review 11 (loop commits): a forked child appends with the store it inherited.

With the fork start method (multiprocessing's default on Linux before Python 3.14) a
child gets its parent's open store: its logs' descriptors share their open file
descriptions with the parent's, and so their `flock`s, which then exclude nobody. Parent
and child appending to one session at once both planned the same sequence numbers: the
log held duplicates and every later reader and writer refused it (`CorruptLogError`).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import threading
from pathlib import Path

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend

APPENDS = 150


async def _burst(store: agentstore.Store, who: str) -> list[int]:
    return [
        (await store.append("s", new_event("custom", {"who": who, "i": i}))).sequence_number
        for i in range(APPENDS)
    ]


def test_a_forked_child_and_its_parent_append_to_one_session(tmp_path: Path) -> None:
    async def setup() -> agentstore.Store:
        store = await agentstore.open(tmp_path)
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"who": "setup", "i": 0}))  # log open
        return store

    store = asyncio.run(setup())  # the store outlives that loop, as a module-level one does
    assert isinstance(store.backend, FileBackend)
    out_r, out_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.read(go_r, 1)
            seqs = asyncio.run(asyncio.wait_for(_burst(store, "child"), 60))
            os.write(out_w, json.dumps(seqs).encode())
        except BaseException as exc:
            os.write(out_w, json.dumps(repr(exc)).encode())
        finally:
            os._exit(0)
    os.close(out_w)
    os.write(go_w, b"g")  # both append at once
    try:
        parent: list[int] | str = asyncio.run(asyncio.wait_for(_burst(store, "parent"), 60))
    except Exception as exc:
        parent = repr(exc)
    ready, _, _ = select.select([out_r], [], [], 60)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with os.fdopen(out_r, "rb") as handle:
        child = json.loads(handle.read() or b'"no answer from the child"')

    async def check() -> None:
        await store.close()
        assert isinstance(parent, list), parent
        assert isinstance(child, list), child
        # Each process's appends came back in order, and no number was given twice.
        assert parent == sorted(parent) and child == sorted(child)
        assert sorted(parent + child) == list(range(2, 2 * APPENDS + 2))
        async with agentstore.open(tmp_path) as again:
            events = await again.get_events("s")
            assert [e.sequence_number for e in events] == list(range(1, 2 * APPENDS + 2))
            for who, seqs in (("parent", parent), ("child", child)):
                mine = [e for e in events if e.payload["who"] == who]
                assert [e.payload["i"] for e in mine] == list(range(APPENDS))
                assert [e.sequence_number for e in mine] == seqs
            assert (await again.verify()).ok

    asyncio.run(check())


def test_a_forked_child_closing_the_store_leaves_the_parents_loop_alone(tmp_path: Path) -> None:
    # The parent's loop is stopped between calls (run_until_complete), as in a script. The
    # child's close must not unwatch the parent's eventfd: the two processes share that
    # loop's epoll set, and the parent's next append would wait for ever.
    loop = asyncio.new_event_loop()
    try:
        store = loop.run_until_complete(agentstore.open(tmp_path))
        loop.run_until_complete(store.create_session(session_id="s"))
        loop.run_until_complete(store.append("s", new_event("custom", {"i": 0})))
        loop.run_until_complete(store.append("s", new_event("custom", {"i": 1})))
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                asyncio.run(store.close())
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

        async def append() -> int:
            event = new_event("custom", {"i": 2})
            return (await asyncio.wait_for(store.append("s", event), 10)).sequence_number

        # Before the fix the sync's end never woke the loop: the append hung (wait_for
        # cannot end it: an append's task waits for its outcome).
        outcome: list[int] = []
        waiter = threading.Thread(target=lambda: outcome.append(loop.run_until_complete(append())))
        waiter.daemon = True
        waiter.start()
        waiter.join(30)
        assert outcome == [3], "the parent's append hung after its child closed the store"
        loop.run_until_complete(store.close())
    finally:
        if not loop.is_running():
            loop.close()

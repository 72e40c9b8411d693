"""Review 11 (loop commits): a sync the kernel refuses, on a loop whose executor is gone.

A sync the kernel's AIO refuses is run on the loop's default executor. Once that executor
was shut down (`loop.shutdown_default_executor()`, as `asyncio.run` does at its end), the
append failed with a bare `RuntimeError` after its lines were written, and its log stayed
locked: the next append to it hung for good. Now such a flight is synced on the loop's
thread, this once, and lands.

Run in a child process, so that a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

from pathlib import Path

from tests.loop_scripts import run_script

_SCRIPT = """
import asyncio, sys
import agentstore
from agentstore import new_event
from agentstore.backends.file import aiosync

async def main():
    async with agentstore.open(sys.argv[1]) as store:
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        if store.backend._commits._here is None:
            print("no loop commits here")
            return
        aiosync.AioSyncer.submit = lambda self, items: [t for _, t in items]  # refused
        await asyncio.get_running_loop().shutdown_default_executor()
        for i in (1, 2):
            try:
                stored = await store.append("s", new_event("custom", {"i": i}))
                print("append", stored.sequence_number)
            except Exception as exc:
                print("append failed", type(exc).__name__)
    async with agentstore.open(sys.argv[1]) as store:
        print("reread", *[e.payload["i"] for e in await store.get_events("s")])

asyncio.run(main())
"""


def test_a_refused_sync_on_a_loop_without_executor_lands(tmp_path: Path) -> None:
    assert run_script(_SCRIPT, str(tmp_path)) == ["append 2", "append 3", "reread 0 1 2"]

"""Review: the end of a file read must not block the event loop on a log's mutex.

`reading.read_events` decodes on the event loop, and at the end merges the checkpoints it
learned into the log's view under `view.mutex` (a `threading.RLock`), on the loop thread.
The commit thread holds that mutex from a group's write until it lands, through the
fdatasync (`commits.py`: "the mutex and lock stay held until it lands"): a read that ends
while an append to the same session is syncing stops every task of the loop for the
length of that sync (milliseconds; hundreds on a stalled disk), the stall the turns were
made to remove.

The test holds the mutex on another thread as a landing commit does, from the read's last
hop until another task has run 20 times since the read went back to decoding on the loop
or the read has returned (or 5 s: a failure). No timing is involved: a loop that is not
blocked does either at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import agentstore
from agentstore import Event, new_event
from agentstore.backends.file import reading
from agentstore.backends.file.log import Logs
from agentstore.backends.file.scan import Scan


async def test_a_read_ending_while_a_commit_holds_the_mutex_leaves_the_loop_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "HOP_BYTES", 4 * 1024)
    # Chunks smaller than the log, so that the read makes hops after its first one.
    monkeypatch.setattr("agentstore.backends.file.lines.READ_CHUNK", 4 * 1024)
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"i": i}) for i in range(300)])
        logs = store._backend._logs  # type: ignore[attr-defined]
        assert isinstance(logs, Logs)
        await store.get_state(sid)  # the snapshot writes behind the fill are done
        view = logs.peek(sid)
        assert view is not None

        go = threading.Event()
        held = threading.Event()
        loop_ran = threading.Event()
        loop_was_free: list[bool] = []

        def commit_landing() -> None:
            if not go.wait(timeout=30):
                return
            with view.mutex:  # as `CommitQueue._lift` .. `_land`, around the sync
                held.set()
                loop_was_free.append(loop_ran.wait(timeout=5))

        real = reading._next_chunks

        def last_hop_under_a_commit(
            chunks: Iterator[reading.Chunk],
        ) -> tuple[list[reading.Chunk], bool]:
            got, more = real(chunks)
            if not more and not held.is_set():  # the read's last hop: the log is done
                go.set()
                held.wait()
            return got, more

        resumed = threading.Event()

        class WatchedScan(Scan):
            # Tells when the read, back on the loop after its last hop, decodes again.
            def pages(self, base: int, lines: list[bytes]) -> Iterator[list[Event]]:
                if held.is_set():
                    resumed.set()
                return super().pages(base, lines)

        holder = threading.Thread(target=commit_landing, daemon=True)
        holder.start()
        monkeypatch.setattr(reading, "_next_chunks", last_hop_under_a_commit)
        monkeypatch.setattr(reading, "Scan", WatchedScan)
        steps = 0
        read_done = False

        async def other_task() -> None:
            nonlocal steps
            while not loop_ran.is_set() and not read_done:
                await anyio.lowlevel.checkpoint()
                if resumed.is_set():  # from here the read runs on the loop to its end
                    steps += 1
                    if steps == 20:
                        loop_ran.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(other_task)
            got = await store.replay(sid)
            read_done = True
            loop_ran.set()  # the read itself ran to its end: the loop was never blocked
        assert len(got) == 300
        holder.join()
        assert held.is_set()
        assert loop_was_free == [True], "the event loop was blocked on the log's mutex"

"""Review 11 (loop commits): flights of a loop that stopped running, or is blocked.

A flight committed on a loop holds its log's mutex (owned by that loop's thread) until the
loop lands it. When that loop stops for good without being closed (its thread returned
from `run_forever` or `run_until_complete` and ended, leaving a fire-and-forget append
task pending), nothing lands the flight: the next append to that log from any other
thread waits for ever, and the commit thread with it (every session's appends). A loop of
the same thread, and closing the store, do land it (tests/test_review11_loop_two_loops.py);
another thread cannot release a mutex it does not own. Not fixed: the flight would have to
be landed by whichever thread needs the log.

The same root, within a running loop: while a task blocks the loop's thread (a `subprocess.run`,
a sync SDK call; docs/sync.md asks not to), the log of a flight in flight stays locked for
every other process. If what the task waits for is another process appending to or opening
that log, nothing moves again (on the commit thread's path the flight landed regardless).

Run in a child process, so that the hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend, loopcommits

_SCRIPT = """
import asyncio, sys, threading
import agentstore
from agentstore import new_event
from agentstore.backends.file import loopcommits

# Stop the loop in the turn its flight is written and its sync submitted.
lift = loopcommits.LoopCommits._lift
stop_after_lift = False

def lift_then_stop(self, sid, requests):
    taken = lift(self, sid, requests)
    if taken and stop_after_lift:
        self.loop.stop()
    return taken

loopcommits.LoopCommits._lift = lift_then_stop
store = None

def thread_a():
    global store, stop_after_lift
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(agentstore.open(sys.argv[1]))
    loop.run_until_complete(store.create_session(session_id="s"))
    loop.run_until_complete(store.append("s", new_event("custom", {"i": 0})))
    stop_after_lift = True
    loop.create_task(store.append("s", new_event("custom", {"i": 1})))
    loop.run_forever()
    stop_after_lift = False  # the thread ends; its loop stays open, the append in flight

a = threading.Thread(target=thread_a)
a.start()
a.join()
if store.backend._commits._here is None:
    print("no loop commits here")
    sys.exit(0)

async def main():
    print((await store.append("s", new_event("custom", {"i": 2}))).sequence_number)

asyncio.run(main())
"""


@pytest.mark.xfail(
    strict=True,
    reason="a flight of a loop stopped for good on another thread is never landed: the "
    "log's mutex belongs to that thread, and appends to it from elsewhere wait for ever",
)
def test_an_append_from_another_thread_after_a_loop_stopped_mid_flight(tmp_path: Path) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT, str(tmp_path / "data")],
            capture_output=True,
            text=True,
            timeout=8,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the append from the main thread hung") from None
    assert done.returncode == 0, done.stderr
    if done.stdout.startswith("no loop commits"):
        pytest.skip("no Linux AIO with eventfd here")
    assert done.stdout.split() == ["3"]


_CHILD = """
import sys
import agentstore
with agentstore.open_sync(sys.argv[1]) as store:
    print(store.append("s", agentstore.new_event("custom", {"i": "child"})).sequence_number)
"""


@pytest.mark.xfail(
    strict=True,
    reason="a flight holds its log's lock until its loop lands it: a process that the "
    "loop's thread waits for cannot append to that log",
)
async def test_a_process_the_loops_thread_waits_for_appends_to_a_log_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child: list[Any] = []
    lift = loopcommits.LoopCommits._lift

    def lift_then_block(self: Any, sid: str, requests: Any) -> bool:
        taken = lift(self, sid, requests)
        if taken and not child:  # a task blocks the loop's thread with this flight in flight
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(tmp_path)],
                    capture_output=True,
                    text=True,
                    timeout=8,
                )
                child.append(done.stdout.strip() or done.stderr)
            except subprocess.TimeoutExpired:
                child.append("the child's append hung")
        return taken

    async with agentstore.open(tmp_path) as store:
        backend = store.backend
        assert isinstance(backend, FileBackend)
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        if backend._commits._here is None:
            pytest.skip("no Linux AIO with eventfd here")
        monkeypatch.setattr(loopcommits.LoopCommits, "_lift", lift_then_block)
        stored = await store.append("s", new_event("custom", {"i": 1}))
        assert stored.sequence_number == 2
        assert child == ["3"]

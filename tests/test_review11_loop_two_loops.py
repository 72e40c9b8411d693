"""Review 11 (loop commits): a store used by two event loops that take turns on one thread.

A loop's appends are landed by that loop (its eventfd), and the flight holds the log's
mutex and lock until then. A second loop run on the same thread while the first is
stopped with an append in flight (`run_until_complete` of one loop, then of another, as
notebooks, test runners and sync wrappers do) waited for that log forever: its append
queued on the commit thread, which waited for the mutex only the stopped loop would
release; not even `asyncio.wait_for` got it out (an append's task waits for its outcome).
Closing the store from the second loop, or after the first was closed mid-flight, hung
the same way (closing the logs waits for their mutexes). On the commit thread's path this
worked, and now works again: the second loop, or the close, lands the first loop's
flights (same thread: it holds their mutexes), each with the outcome the kernel gave its
sync.

Run in a child process, so that a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

from pathlib import Path

from tests.loop_scripts import STOP_AFTER_LIFT, run_script

_SCRIPT = (
    """
import asyncio, errno, sys
import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend, loopcommits
"""
    + STOP_AFTER_LIFT
    + """
# The kernel's answer for loop1's next sync reaped is an I/O error (AIO's event res < 0).
failures = []
synced = loopcommits.LoopCommits._synced

def synced_or_failed(self, finished):
    if failures and self.loop is loop1:
        finished = [(flight, failures.pop()) for flight, _ in finished]
    synced(self, finished)

loopcommits.LoopCommits._synced = synced_or_failed
loop1 = asyncio.new_event_loop()
store = loop1.run_until_complete(agentstore.open(sys.argv[1]))
loop1.run_until_complete(store.create_session(session_id="s"))
loop1.run_until_complete(store.create_session(session_id="t"))
loop1.run_until_complete(store.append("s", new_event("custom", {"i": 0})))
loop1.run_until_complete(store.append("t", new_event("custom", {"i": 0})))
backend = store.backend
assert isinstance(backend, FileBackend)
if backend._commits._here is None:
    print("no loop commits here")
    sys.exit(0)
stop_after_lift = True
if sys.argv[2] == "failed":
    failures.append(OSError(errno.EIO, "Input/output error"))
first = loop1.create_task(store.append("s", new_event("custom", {"i": 1})))
loop1.run_forever()
stop_after_lift = False
assert list(backend._commits._here._in_flight) == ["s"]

async def on_loop2():
    second = await store.append("s", new_event("custom", {"i": 2}))
    third = await store.append("s", new_event("custom", {"i": 3}))
    other = await store.append("t", new_event("custom", {"i": 1}))
    return second.sequence_number, third.sequence_number, other.sequence_number

async def reread():
    async with agentstore.open(sys.argv[1]) as again:
        for sid in ("s", "t"):
            print(sid, *[e.payload["i"] for e in await again.get_events(sid)])
        print("verify", (await again.verify()).ok)

loop2 = asyncio.new_event_loop()
if sys.argv[2] == "append":
    print("loop2", *loop2.run_until_complete(on_loop2()))
    print("loop1", loop1.run_until_complete(first).sequence_number)
    again = loop1.run_until_complete(store.append("t", new_event("custom", {"i": 2})))
    print("loop1 again", again.sequence_number)
    again = loop2.run_until_complete(store.append("s", new_event("custom", {"i": 4})))
    print("loop2 again", again.sequence_number)
    loop2.run_until_complete(store.close())
elif sys.argv[2] == "close":  # the store closed from loop2: its logs wait for loop1's flight
    loop2.run_until_complete(store.close())
    print("loop1", loop1.run_until_complete(first).sequence_number)
elif sys.argv[2] == "failed":  # loop2 lands loop1's flight: with the kernel's outcome
    print("loop2", *loop2.run_until_complete(on_loop2()))
    try:
        print("loop1 acknowledged", loop1.run_until_complete(first).sequence_number)
    except agentstore.StorageError:
        print("loop1 failed")
    loop2.run_until_complete(store.close())
else:  # loop1 closed with its flight in flight, then the store closed from a new loop
    loop1.set_exception_handler(lambda *_: None)  # "Task was destroyed but it is pending!"
    loop1.close()
    del first
    loop2.run_until_complete(store.close())
loop1.close()
loop2.close()
asyncio.run(reread())
"""
)


def _run(tmp_path: Path, mode: str) -> list[str]:
    return run_script(_SCRIPT, str(tmp_path / "data"), mode)


def test_a_second_loop_on_the_thread_lands_the_stopped_loops_flights(tmp_path: Path) -> None:
    assert _run(tmp_path, "append") == [
        "loop2 3 4 2",
        "loop1 2",
        "loop1 again 3",
        "loop2 again 5",
        "s 0 1 2 3 4",
        "t 0 1 2",
        "verify True",
    ]


def test_the_store_closed_from_a_second_loop_lands_the_stopped_loops_flights(
    tmp_path: Path,
) -> None:
    assert _run(tmp_path, "close") == ["loop1 2", "s 0 1", "t 0", "verify True"]


def test_the_store_closed_after_its_loop_was_closed_mid_flight(tmp_path: Path) -> None:
    # The append was written and synced (landed on close), though never acknowledged.
    assert _run(tmp_path, "closed") == ["s 0 1", "t 0", "verify True"]


def test_a_stopped_loops_flight_landed_elsewhere_gets_the_kernels_outcome(
    tmp_path: Path,
) -> None:
    # The kernel failed the sync it was given: landing the flight from loop2 must wait for
    # that outcome, not sync once more (after a failed sync a second one may succeed with
    # the pages lost) and acknowledge the append.
    assert _run(tmp_path, "failed") == [
        "loop2 2 3 2",
        "loop1 failed",
        "s 0 2 3",
        "t 0 1",
        "verify True",
    ]

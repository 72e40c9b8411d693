"""Review 11 (loop commits): flights of a loop that stopped running, or is blocked.

A flight committed on a loop held its log's mutex (an RLock of that loop's thread) and lock
until the loop landed it. When that loop stopped for good without being closed (its
thread returned from `run_forever` or `run_until_complete` and ended, leaving a
fire-and-forget append task pending), nothing landed the flight: the next append to that
log from any other thread waited for ever, and the commit thread with it (every session's
appends). Within a running loop: while a task blocked the loop's thread (a
`subprocess.run`, a sync SDK call; asyncio asks not to), the log stayed locked for every
other thread and process, and a process the task waited for that appends to or opens that
log never got it. On the commit thread's path the flight landed regardless.

Now a watch thread lands a flight its loop is late to land once its sync has ended
(`loopwatch.py`; the flight's mutex can change hands, `mutex.py`), cut back first if the
sync failed; the answer waits for the loop.

Run in child processes or with timeouts, so that a hang fails a test instead of blocking
the suite.
"""

from __future__ import annotations

import asyncio
import errno
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend, aiosync, loopcommits
from tests.loop_scripts import STOP_AFTER_LIFT, run_script

_SCRIPT = (
    """
import asyncio, sys, threading
import agentstore
from agentstore import new_event
from agentstore.backends.file import loopcommits
"""
    + STOP_AFTER_LIFT
    + """
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
)


def test_an_append_from_another_thread_after_a_loop_stopped_mid_flight(tmp_path: Path) -> None:
    # A hang of the append from the main thread fails it.
    assert run_script(_SCRIPT, str(tmp_path / "data"), timeout=8) == ["3"]


_CHILD = """
import sys
import agentstore
with agentstore.open_sync(sys.argv[1]) as store:
    print(store.append("s", agentstore.new_event("custom", {"i": "child"})).sequence_number)
"""


@pytest.mark.parametrize("behind", [False, True], ids=["submitted", "not yet submitted"])
async def test_a_process_the_loops_thread_waits_for_appends_to_a_log_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behind: bool
) -> None:
    # behind: another flight of the turn went first, so this one's sync waits for the
    # loop's next turn (one io_submit for the turn's flights), which the block delays too.
    child: list[Any] = []
    lift = loopcommits.LoopCommits._lift

    def lift_then_block(self: Any, sid: str, requests: Any) -> bool:
        taken = lift(self, sid, requests)
        if taken and sid == "s" and not child:  # a task blocks the loop with this in flight
            if behind:
                assert self._to_submit
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
        for sid in ("s", "t"):
            await store.create_session(session_id=sid)
            await store.append(sid, new_event("custom", {"i": 0}))
        if backend._commits._here is None:
            pytest.skip("no Linux AIO with eventfd here")
        monkeypatch.setattr(loopcommits.LoopCommits, "_lift", lift_then_block)
        appends = [store.append("s", new_event("custom", {"i": 1}))]
        if behind:
            appends.insert(0, store.append("t", new_event("custom", {"i": 1})))
        stored = await asyncio.gather(*appends)
        assert stored[-1].sequence_number == 2
        assert child == ["3"]  # the child got the log while the loop waited for it
    async with agentstore.open(tmp_path) as store:
        assert [e.payload["i"] for e in await store.get_events("s")] == [0, 1, "child"]
        assert (await store.verify()).ok


_PROBE = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
end = time.monotonic() + 5  # a hundred times the watch's period
while True:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("free", os.fstat(fd).st_size)  # what another process then finds
        break
    except BlockingIOError:
        if time.monotonic() > end:
            print("locked")
            break
        time.sleep(0.01)
"""


async def test_a_failed_sync_is_cut_back_before_its_lock_goes_while_the_loop_is_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watch thread lands the flight: one whose sync failed is cut back out before
    # another process may have the log (it must never find those lines).
    probe: list[str] = []
    failures = [OSError(errno.EIO, "Input/output error")]
    taken = aiosync.AioSyncer._taken
    lift = loopcommits.LoopCommits._lift

    def taken_or_failed(self: Any, events: Any, got: int) -> list[tuple[Any, Any]]:
        ended = taken(self, events, got)
        if failures and ended:  # the kernel's answer for that sync: an I/O error
            ended = [(token, failures.pop()) for token, _ in ended]
        return ended

    def lift_then_block(self: Any, sid: str, requests: Any) -> bool:
        lifted = lift(self, sid, requests)
        if lifted and not probe:  # a task blocks the loop with this flight in flight
            log = tmp_path / "events" / "s.jsonl"
            done = subprocess.run(
                [sys.executable, "-c", _PROBE, str(log)], capture_output=True, text=True
            )
            probe.append(done.stdout.strip() or done.stderr)
        return lifted

    async with agentstore.open(tmp_path) as store:
        backend = store.backend
        assert isinstance(backend, FileBackend)
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        if backend._commits._here is None:
            pytest.skip("no Linux AIO with eventfd here")
        before = (tmp_path / "events" / "s.jsonl").read_bytes()
        monkeypatch.setattr(aiosync.AioSyncer, "_taken", taken_or_failed)
        monkeypatch.setattr(loopcommits.LoopCommits, "_lift", lift_then_block)
        with pytest.raises(agentstore.StorageError, match="nothing was appended"):
            await store.append("s", new_event("custom", {"lost": True}))
        assert not failures  # the failure was the kernel's answer for that flight
        assert probe == [f"free {len(before)}"]
        assert (tmp_path / "events" / "s.jsonl").read_bytes() == before  # cut back
        stored = await store.append("s", new_event("custom", {"i": 1}))
        assert stored.sequence_number == 2

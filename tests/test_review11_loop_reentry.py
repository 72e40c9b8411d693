"""Review 11 (loop commits): a blocking append made on the thread of the loop that has a
flight of the same log in flight.

A `SyncStore` appends on its caller's thread (`append_blocking`), and an append listener
runs on the store's loop: a listener that appends through the `SyncStore` does so on the
loop's thread. If that loop had a flight of the same log in flight, the thread already
held the log's mutex (reentrant) and lock (the same descriptor): the blocking append went
straight in, read the flight's lines, not yet synced, as committed, and planned after them;
then the flight landed and counted its lines a second time. The next append of that log
failed ("lines this process already read were cut by another program"), and a failed
sync of the flight could no longer be cut back out. Now such an append first lands the
loop's flights, waiting for their syncs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend, loopcommits


def test_a_listener_appending_on_the_loop_while_its_log_is_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lift = loopcommits.LoopCommits._lift
    inner: list[Any] = []
    store = agentstore.open_sync(tmp_path)

    def lift_then_append(self: Any, sid: str, requests: Any) -> bool:
        taken = lift(self, sid, requests)
        if taken and not inner:
            # What a listener of the SyncStore's appends does when it runs on the loop
            # while a flight of this log is in flight: append through the SyncStore.
            inner.append(store.append("s", new_event("custom", {"i": "listener"})))
        return taken

    try:
        store.create_session(session_id="s")
        store.append("s", new_event("custom", {"i": 0}))
        backend = store.backend
        assert isinstance(backend, FileBackend)
        monkeypatch.setattr(loopcommits.LoopCommits, "_lift", lift_then_append)
        # An append the SyncStore makes on its loop (an empty batch or one with an
        # llm_request stays there): committed on that loop.
        outer = store.append("s", new_event("llm_request", {"model": "m", "messages": []}))
        if not inner:
            pytest.skip("no Linux AIO with eventfd here: nothing was committed on the loop")
        assert (outer.sequence_number, inner[0].sequence_number) == (2, 3)
        assert store.append("s", new_event("custom", {"i": 3})).sequence_number == 4
    finally:
        store.close()
    with agentstore.open_sync(tmp_path) as again:
        events = again.get_events("s")
        assert [e.sequence_number for e in events] == [1, 2, 3, 4]
        assert [e.payload.get("i") for e in events] == [0, None, "listener", 3]
        assert again.verify().ok

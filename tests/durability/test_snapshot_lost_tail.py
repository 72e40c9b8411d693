"""A snapshot synced past a log's lost tail is not taken for the session's state.

With durability "flush" an append returns once the OS has its lines; a machine crash can
lose them. A snapshot is written (and synced) behind the append that made it due, so after
such a crash the snapshot can be ahead of the log. The first appends after the crash take
the lost events' numbers: a snapshot at one of those numbers is of events no longer there.
The log is the truth: `get_state` folds it, and the next snapshot replaces the stale one.
A machine crash cannot be made here; cutting the log's last lines is what it leaves.
"""

from __future__ import annotations

from pathlib import Path

import orjson

import agentstore
from agentstore import Event, State, default_reducer, new_event


def _fold(session_id: str, events: list[Event]) -> State:
    state = State(session_id=session_id)
    for event in events:
        state = default_reducer(state, event)
    return state


async def _session_of(data: Path, count: int) -> tuple[str, Path]:
    """A session of `count` events written with durability "flush" (snapshots every 100)."""
    async with agentstore.open(data, durability="flush", pricing=False) as store:
        sid = (await store.create_session()).id
        for i in range(count):
            await store.append(sid, new_event("tool_result", {"i": i}))
    return sid, data / "events" / f"{sid}.jsonl"


def _cut_to(log: Path, lines: int) -> None:
    """Keep a log's first `lines` lines: its unsynced tail lost in a machine crash."""
    kept = log.read_bytes().splitlines(keepends=True)[:lines]
    log.write_bytes(b"".join(kept))


def _snapshot_version(data: Path, sid: str) -> int:
    version: int = orjson.loads((data / "snapshots" / f"{sid}.json").read_bytes())["version"]
    return version


async def test_appends_in_the_lost_events_numbers_are_folded_from_the_log(tmp_path: Path) -> None:
    sid, log = await _session_of(tmp_path, 150)
    assert _snapshot_version(tmp_path, sid) == 100
    _cut_to(log, 90)
    async with agentstore.open(tmp_path, durability="flush", pricing=False) as store:
        for i in range(60):  # 91..150: other events in the lost ones' numbers
            await store.append(sid, new_event("error", {"j": i}))
        events = await store.replay(sid)
        state = await store.get_state(sid)
        expected = _fold(sid, events)
        assert (state.errors, state.data["tool_result"]) == (60, {"i": 89})
        assert state.model_dump() == expected.model_dump()
        for at_seq in (100, 120):
            past = await store.get_state(sid, at_seq=at_seq)
            assert past.model_dump() == _fold(sid, events[:at_seq]).model_dump()
        report = await store.verify(sid)
        assert report.problems == []  # the snapshot at 100 was made again, from the log
    async with agentstore.open(tmp_path, pricing=False) as cold:
        assert (await cold.get_state(sid)).model_dump() == expected.model_dump()


async def test_a_snapshot_whose_last_event_the_log_holds_still_serves_cold_reads(
    tmp_path: Path,
) -> None:
    # The check reads the snapshot's last event back (its time, its payload) and must
    # accept a snapshot that matches: marked here with a count no fold makes, which a
    # cold read then shows (it started from the snapshot, not from the first event).
    sid, _ = await _session_of(tmp_path, 130)
    path = tmp_path / "snapshots" / f"{sid}.json"
    snapshot = orjson.loads(path.read_bytes())
    assert snapshot["version"] == 100
    snapshot["state"]["tool_calls"] = 1000
    path.write_bytes(orjson.dumps(snapshot))
    async with agentstore.open(tmp_path, pricing=False) as store:
        assert (await store.get_state(sid)).tool_calls == 1000
        assert (await store.get_state(sid, at_seq=100)).tool_calls == 1000


async def test_verify_says_the_store_ignores_a_snapshot_of_lost_events(tmp_path: Path) -> None:
    sid, log = await _session_of(tmp_path, 150)
    _cut_to(log, 90)
    # Appended to by a store that takes no snapshots: the stale one at 100 stays.
    async with agentstore.open(tmp_path, snapshot_interval=0, pricing=False) as store:
        for i in range(20):
            await store.append(sid, new_event("error", {"j": i}))
    async with agentstore.open(tmp_path, pricing=False) as store:
        (problem,) = (await store.verify(sid)).problems
        assert problem.kind == "snapshot"
        assert "other events than the log holds; the store ignores it" in problem.message
        assert (await store.get_state(sid)).errors == 20  # from the log, not the snapshot

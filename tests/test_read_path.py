"""The read path: the collector's pause around decoding, pages of a scan, stored events."""

from __future__ import annotations

import gc
import threading
from datetime import timedelta
from pathlib import Path

import pytest

import agentstore
from agentstore import EventType, new_event
from agentstore._gc import gc_paused
from agentstore.backends.file.scan import DECODE_PAGE
from agentstore.backends.memory import MemoryBackend
from agentstore.errors import CorruptLogError


def test_a_pause_restores_the_collector_even_on_error(collector_on: None) -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_pause_leaves_a_disabled_collector_disabled() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_pauses_on_several_threads_end_with_the_last_one(collector_on: None) -> None:
    # Thread A pauses first and ends first; B's pause began inside A's and must keep the
    # collector off until it ends, then turn it back on.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def a() -> None:
        with gc_paused():
            a_in.set()
            b_in.wait()
        a_out.set()

    def b() -> None:
        a_in.wait()
        with gc_paused():
            b_in.set()
            a_out.wait()
            seen["during B, after A"] = gc.isenabled()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"during B, after A": False}
    assert gc.isenabled()


def _events(start: int, n: int) -> list[agentstore.Event]:
    kinds = [EventType.TOOL_CALLED, EventType.TOOL_RESULT, EventType.LLM_RESPONSE]
    return [new_event(kinds[i % 3], {"step": i}) for i in range(start, start + n)]


async def _session(store: agentstore.Store, n: int) -> str:
    sid = (await store.create_session()).id
    for start in range(0, n, 1000):
        await store.append_many(sid, _events(start, min(1000, n - start)))
    return sid


@pytest.mark.parametrize("in_memory", [False, True])
async def test_filters_across_decode_pages(
    tmp_path: Path, collector_on: None, in_memory: bool
) -> None:
    n = 2 * DECODE_PAGE + 500
    opened = agentstore.open(in_memory=True) if in_memory else agentstore.open(tmp_path)
    async with opened as store:
        sid = await _session(store, n)
        everything = await store.replay(sid)
        assert [e.sequence_number for e in everything] == list(range(1, n + 1))
        got = await store.replay(sid, from_seq=DECODE_PAGE - 1, limit=DECODE_PAGE + 3)
        assert [e.sequence_number for e in got] == list(range(DECODE_PAGE - 1, 2 * DECODE_PAGE + 2))
        got = await store.replay(sid, to_seq=DECODE_PAGE + 1)
        assert len(got) == DECODE_PAGE + 1
        got = await store.replay(sid, types=["tool_result"], limit=400)  # to seq 1,199
        assert [e.sequence_number for e in got] == list(range(2, 3 * 400, 3))
        got = await store.replay(sid, types=["tool_result"])
        assert [e.sequence_number for e in got] == list(range(2, n + 1, 3))
        until = everything[DECODE_PAGE + 10].timestamp
        assert until is not None
        got = await store.replay(sid, until=until)
        assert got == [e for e in everything if e.timestamp is not None and e.timestamp <= until]
        got = await store.replay(sid, since=until - timedelta(0), from_seq=n - 5)
        assert [e.sequence_number for e in got] == list(range(n - 5, n + 1))
    assert gc.isenabled()


async def test_a_damaged_line_in_a_later_page_is_reported_and_the_collector_restored(
    tmp_path: Path, collector_on: None
) -> None:
    n = DECODE_PAGE + 20
    async with agentstore.open(tmp_path) as store:
        sid = await _session(store, n)
    log = tmp_path / "events" / f"{sid}.jsonl"
    lines = log.read_bytes().split(b"\n")
    bad = DECODE_PAGE + 5
    lines[bad - 1] = lines[bad - 1].replace(b'"step":', b'"stop":')  # checksum now wrong
    log.write_bytes(b"\n".join(lines))
    async with agentstore.open(tmp_path) as store:
        with pytest.raises(CorruptLogError) as info:
            await store.replay(sid)
        assert info.value.line == bad
        assert await store.replay(sid, to_seq=bad - 1) != []
    assert gc.isenabled()


async def test_stored_events_read_back_stay_independent(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = await _session(store, 3)
    async with agentstore.open(tmp_path) as store:
        first, second, _ = await store.replay(sid)
        changed = first.model_copy(update={"payload": {"step": 99}})
        assert changed.payload == {"step": 99} and first.payload == {"step": 0}
        assert "payload" in changed.model_fields_set
        assert second.model_fields_set == first.model_fields_set
        first.metadata.tool_name = "mine"  # the event's own copy
        assert second.metadata.tool_name is None
        assert (await store.replay(sid))[0].metadata.tool_name is None


async def test_a_session_made_anew_elsewhere_is_not_read_from_the_stale_cache() -> None:
    backend = MemoryBackend()  # two stores on one backend, as two processes on one directory
    async with agentstore.Store(backend) as mine, agentstore.Store(backend) as other:
        sid = await _session(mine, 5)
        assert (await mine.get_state(sid)).version == 5
        await other.delete_session(sid)
        await other.create_session(session_id=sid)
        await other.append(sid, new_event(EventType.TOOL_CALLED, {"step": 0}))
        state = await mine.get_state(sid)
        assert state.version == 1
        assert state == await other.get_state(sid)


async def test_the_events_of_a_read_share_one_session_id(tmp_path: Path) -> None:
    # 10,000 events held by a caller: 85 bytes each less, and less to free.
    async with agentstore.open(tmp_path) as store:
        sid = await _session(store, 2500)
    async with agentstore.open(tmp_path) as store:
        events = await store.replay(sid)
    assert {e.session_id for e in events} == {sid}
    assert len({id(e.session_id) for e in events}) == 1

"""The file backend reads, and appends to, a data directory written by the Go original."""

from __future__ import annotations

import json
from pathlib import Path

import google_crc32c
import pytest

import agentstore
from agentstore import EventType, State, default_reducer, new_event

from .conftest import GO_DATA, GO_LONG, GO_SHORT


def _fold(session_id: str, events: list[agentstore.Event]) -> State:
    state = State(session_id=session_id)
    for event in events:
        state = default_reducer(state, event)
    return state


async def test_lists_both_sessions_read_only() -> None:
    async with agentstore.open(GO_DATA, read_only=True) as store:
        sessions = await store.list_sessions()
        assert [s.id for s in sessions] == [GO_LONG, GO_SHORT]  # newest first
        short = await store.get_session(GO_SHORT)
        assert short.name == "flight-search"
        assert short.labels == {"agent": "travel", "env": "demo"}
        assert short.event_count == 6
        assert (await store.get_session(GO_LONG)).event_count == 250
        assert await store.list_sessions(labels={"agent": "travel"}) == [short]


async def test_replays_go_events() -> None:
    async with agentstore.open(GO_DATA, read_only=True) as store:
        events = await store.replay(GO_SHORT)
        assert [e.type for e in events] == [
            "user_message",
            "plan_created",
            "tool_called",
            "tool_result",
            "llm_request",
            "llm_response",
        ]
        first = events[0]
        assert first.payload == {
            "content": "Find flights from Berlin to Munich for next Friday",
            "role": "user",
        }
        assert first.timestamp is not None
        assert first.timestamp.microsecond == 226179  # nanoseconds cut to microseconds
        assert events[3].metadata.duration_ms == 1200
        # Go lines have no id: a stable one is derived, so reads agree with each other.
        assert first.id == (await store.replay(GO_SHORT, to_seq=1))[0].id
        cache_hits = await store.replay(GO_LONG, types=["cache_hit"])
        assert len(cache_hits) == 50
        assert cache_hits[-1].metadata.extra == {"k": "v"}


async def test_state_equals_full_fold_despite_go_snapshot() -> None:
    async with agentstore.open(GO_DATA, read_only=True) as store:
        for sid in (GO_SHORT, GO_LONG):
            state = await store.get_state(sid)
            expected = _fold(sid, await store.get_events(sid))
            assert state.model_dump() == expected.model_dump()
        long_state = await store.get_state(GO_LONG)
        assert long_state.version == 250
        assert (long_state.tool_calls, long_state.errors) == (50, 50)
        short_state = await store.get_state(GO_SHORT)
        assert (short_state.tokens.input, short_state.tokens.output) == (850, 320)
        assert short_state.tokens.cost_usd == pytest.approx(0.018)


async def test_appends_to_go_sessions(go_data: Path) -> None:
    async with agentstore.open(go_data) as store:
        stored = await store.append(GO_SHORT, new_event(EventType.USER_MESSAGE, {"content": "x"}))
        assert stored.sequence_number == 7
        more = await store.append(GO_LONG, new_event("cache_hit", {"i": 250}))
        assert more.sequence_number == 251
        assert (await store.get_state(GO_LONG)).event_count == 251
    lines = (go_data / "events" / f"{GO_SHORT}.jsonl").read_text().splitlines()
    assert len(lines) == 7
    last = json.loads(lines[-1])  # plain JSON, Go's field names plus id and the checksum
    assert set(last) == {
        "id",
        "session_id",
        "sequence_number",
        "type",
        "payload",
        "timestamp",
        "metadata",
        "crc32c",
    }
    # The checksum is CRC-32C of the line without the field: any language can check it.
    body = lines[-1].encode().replace(b',"crc32c":"' + last["crc32c"].encode() + b'"', b"")
    assert int(last["crc32c"], 16) == google_crc32c.value(body)
    assert last["timestamp"].endswith("Z")
    assert last["metadata"] == {}
    # The Go original's earlier lines are untouched.
    assert lines[:6] == (GO_DATA / "events" / f"{GO_SHORT}.jsonl").read_text().splitlines()
    async with agentstore.open(go_data, read_only=True) as store:
        assert len(await store.get_events(GO_SHORT)) == 7

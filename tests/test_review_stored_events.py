"""Review of the read path's shared pieces: what users hold is theirs alone.

Events decoded without metadata share one empty `Metadata` until it is read, and stored
events read their fields-set from a class default. These tests poke at the returned
objects the way users do (mutate the metadata, copy, pickle, iterate, compare) on both
local backends and check that nothing reaches the store or another event.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import agentstore
from agentstore import Event, Metadata, Store, new_event
from agentstore.errors import InvalidEventError


@pytest.fixture(params=["file", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store on each local backend."""
    target = tmp_path if request.param == "file" else "memory://"
    async with agentstore.open(target) as opened:
        yield opened


def _events() -> list[Event]:
    return [
        new_event("tool_called", {"step": 1}),
        new_event("custom", None),
        new_event("llm_response", {"text": "hi"}).with_metadata(model="m", tokens_in=3),
        new_event("tool_result", [1, {"k": 2}]).with_metadata(extra={"a": "b"}),
    ]


async def test_changing_a_read_events_metadata_reaches_nothing_else(store: Store) -> None:
    sid = (await store.create_session()).id
    appended = await store.append_many(sid, _events())
    read = await store.replay(sid)
    for event in (*appended, *read):
        event.metadata.model = "poked"
        event.metadata.tokens_out = 7
        if event.metadata.extra is not None:
            event.metadata.extra["a"] = "poked"
    again = await store.replay(sid)
    assert [e.metadata.model for e in again] == [None, None, "m", None]
    assert [e.metadata.tokens_out for e in again] == [None] * 4
    assert again[3].metadata.extra == {"a": "b"}
    assert [e.to_json() for e in again] == [e.to_json() for e in await store.replay(sid)]
    # The events of one read do not share their metadata with each other either.
    fresh = await store.replay(sid)
    fresh[0].metadata.worker_id = "w"
    assert [e.metadata.worker_id for e in fresh] == ["w", None, None, None]


async def test_copies_of_a_read_event_have_their_own_metadata(store: Store) -> None:
    sid = (await store.create_session()).id
    await store.append_many(sid, _events())
    for event in await store.replay(sid):
        before = event.to_json()
        copies = [
            event.model_copy(),
            event.model_copy(deep=True),
            event.model_copy(update={"payload": {"new": 1}}),
            copy.copy(event),
            copy.deepcopy(event),
            pickle.loads(pickle.dumps(event)),
        ]
        for other in copies:
            assert isinstance(other.metadata, Metadata)
        deep = copies[1:2] + copies[4:]
        for other in deep:
            assert other == event
            other.metadata.provider = "changed"
        assert event.metadata.provider is None
        assert event.to_json() == before


async def test_dict_iteration_and_dumps_match_an_equal_event(store: Store) -> None:
    sid = (await store.create_session()).id
    written = _events()
    await store.append_many(sid, written)
    for event in await store.replay(sid):
        writable = Event.model_validate(event.model_dump())
        assert writable == event and event == writable
        assert event.model_dump_json() == writable.model_dump_json()
        assert event.to_json() == writable.to_json()
        pairs = dict(event)
        assert list(pairs) == list(Event.model_fields)
        assert pairs["metadata"] == writable.metadata
        pairs["metadata"].call_id = "mine"  # dict(event) hands out the event's own
        assert event.metadata.call_id == "mine"
        assert (await store.replay(sid))[event.sequence_number - 1].metadata.call_id is None
        with pytest.raises(TypeError):
            hash(event)
        with pytest.raises(InvalidEventError):
            event.metadata = Metadata()


@pytest.mark.parametrize(
    "raw_metadata",
    ['"x"', "[1]", '{"tokens_in": -1}', '{"extra": {"a": 1}}', '{"cost_usd": -1}', "7"],
)
def test_a_hostile_stored_line_is_refused_with_agentstores_error(raw_metadata: str) -> None:
    line = (
        '{"id":"e","session_id":"s","sequence_number":1,"type":"custom","payload":null,'
        f'"timestamp":"2026-11-29T12:00:00Z","metadata":{raw_metadata}}}'
    )
    with pytest.raises(InvalidEventError):
        Event.from_json(line)

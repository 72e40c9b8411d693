"""Decoded events without metadata share one empty `Metadata` until it is read."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

import agentstore
from agentstore import Event, Metadata, new_event
from agentstore.errors import InvalidEventError
from agentstore.metadata import SHARED_EMPTY


async def _stored(tmp_path: Path) -> tuple[list[Event], list[Event]]:
    """(events as the append returned them, the same events read back from disk)."""
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        appended = await store.append_many(
            sid,
            [
                new_event("tool_called", {"step": 1}),
                new_event("llm_response", {"text": "hi"}).with_metadata(model="m", tokens_in=3),
                new_event("tool_result", [1, 2]),
            ],
        )
    async with agentstore.open(tmp_path) as store:
        return appended, await store.replay(sid)


async def test_read_events_are_indistinguishable_from_appended_ones(tmp_path: Path) -> None:
    appended, read = await _stored(tmp_path)
    assert read[0].__dict__["metadata"] is SHARED_EMPTY  # the point: nothing built yet
    for a, r in zip(appended, read, strict=True):
        assert r == a and a == r
        assert r.model_dump() == a.model_dump()
        assert r.model_dump_json() == a.model_dump_json()
        assert r.to_json() == a.to_json()
        assert repr(r) == repr(a)
        assert r.model_fields_set == a.model_fields_set
        assert pickle.loads(pickle.dumps(r)) == a
        assert copy.deepcopy(r) == a and copy.copy(r) == a
        assert r.model_copy(update={"payload": 1}) == a.model_copy(update={"payload": 1})
        assert isinstance(r.metadata, Metadata) and type(r.metadata) is Metadata
        assert r.metadata == a.metadata


async def test_a_read_event_hands_out_its_own_metadata(tmp_path: Path) -> None:
    _, read = await _stored(tmp_path)
    first, third = read[0], read[2]
    mine = first.metadata
    assert mine is not SHARED_EMPTY and mine is first.metadata  # made once, then kept
    mine.model = "changed"  # the event's own copy: changes nothing else
    assert first.metadata.model == "changed"
    assert third.metadata.model is None and SHARED_EMPTY.model is None
    assert dict(read[2])["metadata"] is not SHARED_EMPTY  # iteration too
    assert Event(**dict(read[1])).metadata is not SHARED_EMPTY
    with pytest.raises(InvalidEventError):
        first.metadata = Metadata()  # read-only event, as before


def test_the_shared_empty_metadata_refuses_changes() -> None:
    with pytest.raises(InvalidEventError):
        SHARED_EMPTY.model = "x"
    with pytest.raises(InvalidEventError):
        del SHARED_EMPTY.model
    assert Metadata() == SHARED_EMPTY and SHARED_EMPTY.to_dict() == {}
    ordinary = Metadata()
    ordinary.model = "fine"
    assert ordinary.model == "fine"


def test_event_from_json_of_a_stored_line_has_its_own_metadata() -> None:
    line = (
        b'{"id":"e1","session_id":"s","sequence_number":1,"type":"custom","payload":null,'
        b'"timestamp":"2026-11-29T12:00:00Z","metadata":{}}'
    )
    event = Event.from_json(line)
    assert event.to_json() == line
    assert event.metadata is not SHARED_EMPTY
    event.metadata.model = "x"  # its own
    assert Event.from_json(line).metadata.model is None


async def test_stored_events_read_their_slots_as_before(tmp_path: Path) -> None:
    appended, read = await _stored(tmp_path)
    for r in (*appended, *read):
        assert r.model_fields_set == {"id", "type", "payload", "metadata"}
        assert r.__pydantic_extra__ is None and r.__pydantic_private__ is None
        assert r.model_dump(exclude_unset=True).keys() == {"id", "type", "payload", "metadata"}
        changed = r.model_copy(update={"payload": 5})
        assert changed.payload == 5 and "payload" in changed.model_fields_set
        assert r.model_fields_set == {"id", "type", "payload", "metadata"}  # not the copy's
        again = pickle.loads(pickle.dumps(changed))
        assert again == changed and again.model_fields_set == changed.model_fields_set
        writable = Event.model_validate(r.model_dump())
        assert writable == r and r == writable
        assert Event.model_validate(r, from_attributes=True) == r

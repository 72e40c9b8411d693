"""A payload or metadata nested deeper than an event's JSON can hold is refused before
anything is written; one at the limit is stored and reads back everywhere (orjson writes
254 levels: the event's JSON holds the payload one level down, a state's two)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import agentstore
from agentstore import InvalidEventError, Metadata, new_event
from agentstore.eventjson import MAX_PAYLOAD_DEPTH


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_a_payload_at_the_limit_is_stored_and_reads_back(kind: str, tmp_path: Path) -> None:
    opened = agentstore.open(in_memory=True) if kind == "memory" else agentstore.open(tmp_path)
    async with opened as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("deep", _nest(MAX_PAYLOAD_DEPTH)))
        [event] = await store.replay(sid)
        assert orjson.loads(event.to_json())["payload"] == _nest(MAX_PAYLOAD_DEPTH)
        state = await store.get_state(sid)
        orjson.dumps(state.model_dump(mode="json"))  # the state's JSON holds it too
    if kind == "file":  # and a store opened anew reads it from disk
        async with agentstore.open(tmp_path) as again:
            assert [e.payload for e in await again.replay(sid)] == [_nest(MAX_PAYLOAD_DEPTH)]


@pytest.mark.parametrize("depth", [MAX_PAYLOAD_DEPTH + 1, 254, 400, 2000])
async def test_a_deeper_payload_is_refused_before_anything_is_written(depth: int) -> None:
    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        with pytest.raises(InvalidEventError, match="nested more than 252 levels"):
            await store.append(sid, new_event("deep", _nest(depth)))
        assert await store.replay(sid) == []


async def test_deep_metadata_is_refused_at_its_own_limit() -> None:
    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        # {"deep": [[...]]}: the metadata object is one level of its own.
        await store.append(sid, new_event("m", {}, metadata=Metadata(deep=_nest(252))))
        [event] = await store.replay(sid)
        orjson.loads(event.to_json())
        with pytest.raises(InvalidEventError, match="metadata is nested more than 253"):
            await store.append(sid, new_event("m", {}, metadata=Metadata(deep=_nest(253))))
        assert len(await store.replay(sid)) == 1


def test_a_large_flat_payload_is_not_taken_for_a_deep_one() -> None:
    # Many brackets side by side (past the quick filter) are no nesting.
    from agentstore.eventjson import encode_payload

    wide = [[[1]] for _ in range(5000)]
    assert orjson.loads(encode_payload(wide)) == wide
    text = {"s": "[" * 5000}  # brackets inside a string are no nesting either
    assert orjson.loads(encode_payload(text)) == text

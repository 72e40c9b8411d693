"""Pickled or deep-copied read events each have metadata of their own."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import agentstore
from agentstore import new_event


async def _read(tmp_path: Path) -> list[agentstore.Event]:
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", i) for i in range(3)])
    async with agentstore.open(tmp_path) as store:  # read back: decoded from disk
        return await store.replay(sid)


async def test_unpickled_read_events_have_their_own_metadata(tmp_path: Path) -> None:
    events = pickle.loads(pickle.dumps(await _read(tmp_path)))  # e.g. sent to a worker
    events[0].metadata.model = "only the first"
    assert [e.metadata.model for e in events] == ["only the first", None, None]


async def test_deep_copied_read_events_have_their_own_metadata(tmp_path: Path) -> None:
    events = copy.deepcopy(await _read(tmp_path))
    events[0].metadata.model = "only the first"
    assert [e.metadata.model for e in events] == ["only the first", None, None]

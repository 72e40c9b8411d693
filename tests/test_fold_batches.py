"""A batch folded into the cached state gives the state a cold fold of the log gives.

The cache folds what an append wrote (`StateKeeper.fold_appended`); for the built-in
reducer it decodes only the latest payload of each type in a batch (the only one it
keeps). A session this store created starts cached where the cache folds appends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import EventType, State, Store, new_event


def _dump(state: State) -> dict[str, object]:
    return state.model_dump(mode="json")


async def _cold_state(store: Store, sid: str) -> State:
    cold = Store(store._backend, cache_size=0, snapshot_interval=0)
    await cold
    try:
        return await cold.get_state(sid)
    finally:
        cold._closed = True  # shares the backend: do not close it twice


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_batches_with_repeats_fold_as_the_log_does(tmp_path: Path, kind: str) -> None:
    opened = agentstore.open(in_memory=True) if kind == "memory" else agentstore.open(tmp_path)
    async with opened as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)  # cached from the start, on every backend
        first = new_event(EventType.TOOL_CALLED, {"q": "first"})
        retried = first.model_copy()  # the same id again, later in the batch
        await store.append_many(
            sid,
            [
                first,
                new_event(EventType.USER_MESSAGE, {"content": "hi"}),
                new_event(EventType.TOOL_CALLED, {"q": "second"}),
                retried,
                new_event(EventType.CUSTOM, [1, 2]),
            ],
        )
        # A retry of a whole earlier batch's event beside new ones of the same types.
        await store.append_many(
            sid,
            [
                new_event(EventType.USER_MESSAGE, {"content": "again"}),
                first.model_copy(),
                new_event(EventType.CUSTOM, {"last": True}),
            ],
        )
        hot = await store.get_state(sid)
        assert hot.data[EventType.TOOL_CALLED] == {"q": "second"}
        assert hot.data[EventType.USER_MESSAGE] == {"content": "again"}
        assert hot.data[EventType.CUSTOM] == {"last": True}
        assert hot.version == 6
        assert _dump(hot) == _dump(await _cold_state(store, sid))


async def test_a_created_session_folds_its_appends_without_a_read(tmp_path: Path) -> None:
    # A data directory with snapshots on: the session this store made is cached from its
    # creation, so the appends fold in as they go and the state equals the log's.
    async with agentstore.open(tmp_path, snapshot_interval=3) as store:
        sid = (await store.create_session()).id
        assert sid in store._states._cache
        for n in range(4):
            await store.append_many(
                sid, [new_event(EventType.TOOL_CALLED, {"n": n}) for _ in range(2)]
            )
        hot = await store.get_state(sid)
        assert hot.version == 8
        assert hot.data[EventType.TOOL_CALLED] == {"n": 3}
        assert _dump(hot) == _dump(await _cold_state(store, sid))


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_a_folded_batch_keeps_nothing_of_the_callers_payloads(
    tmp_path: Path, kind: str
) -> None:
    # The built-in reducer folds a batch's events that are not the latest of their type
    # as stored (with the caller's payload, which the latest's private copy overwrites):
    # once the fold ends, the cached state must share no object with the caller.
    opened = agentstore.open(in_memory=True) if kind == "memory" else agentstore.open(tmp_path)
    async with opened as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)  # cached from the start
        payloads = [{"n": n, "items": [n]} for n in range(6)]
        types = [EventType.TOOL_CALLED, EventType.TOOL_RESULT, EventType.CUSTOM] * 2
        await store.append_many(
            sid, [new_event(t, p) for t, p in zip(types, payloads, strict=True)]
        )
        for payload in payloads:  # the caller changes what it passed
            payload["n"] = -1
            payload["items"].append("changed")  # type: ignore[attr-defined]
        hot = await store.get_state(sid)
        assert hot.data[EventType.TOOL_CALLED] == {"n": 3, "items": [3]}
        assert hot.data[EventType.TOOL_RESULT] == {"n": 4, "items": [4]}
        assert hot.data[EventType.CUSTOM] == {"n": 5, "items": [5]}
        assert _dump(hot) == _dump(await _cold_state(store, sid))

"""The state folded into the cache batch after batch (`StateKeeper.fold_appended`) equals a
cold fold of the log, on memory, file and PostgreSQL, for random batches (fixed seeds):
types repeated and mixed, ids retried from earlier batches and repeated within one,
open calls and token counts, payloads the caller changes after appending, a refused
batch in between, and snapshots every few events whose content is the cold fold at their
version."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import Event, EventType, State, Store, new_event
from agentstore.errors import ConcurrencyError
from agentstore.state import default_reducer

_TYPES = [
    EventType.TOOL_CALLED,
    EventType.TOOL_RESULT,
    EventType.LLM_REQUEST,
    EventType.LLM_RESPONSE,
    EventType.ERROR,
    EventType.CUSTOM,
]


def _dump(state: State) -> dict[str, Any]:
    return state.model_dump(mode="json")


async def _cold(store: Store, sid: str, at_seq: int | None = None, url: str = "") -> State:
    """The state folded from the log by a store with no cache and no snapshots (on
    PostgreSQL a store of its own on the same schema; elsewhere one on the same backend)."""
    options: dict[str, Any] = {
        "cache_size": 0,
        "snapshot_interval": 0,
        "reducer": store._states.reducer,
    }
    if url:
        async with agentstore.open(url, **options) as other:
            return await other.get_state(sid, at_seq=at_seq)
    cold = Store(store._backend, **options)
    await cold
    try:
        return await cold.get_state(sid, at_seq=at_seq)
    finally:
        cold._closed = True  # shares the backend: do not close it twice


def _event(rng: random.Random, n: int) -> Event:
    kind = rng.choice(_TYPES)
    payload: dict[str, Any] = {"n": n, "items": [n, {"deep": [n]}]}
    event = new_event(kind, payload)
    call = f"call_{rng.randrange(3)}"
    if kind in (EventType.LLM_REQUEST, EventType.LLM_RESPONSE):
        event = event.with_metadata(
            call_id=call, model="m", tokens_in=rng.randrange(50), tokens_out=rng.randrange(50)
        )
    elif kind in (EventType.TOOL_CALLED, EventType.TOOL_RESULT, EventType.ERROR):
        event = event.with_metadata(call_id=call, tool_name="t")
    return event


def _counting(state: State, event: Event) -> State:
    """A reducer of one's own (not trusted by the fold): the built-in one plus a list."""
    state = default_reducer(state, event)
    state.data.setdefault("seen", []).append(event.payload["n"])
    return state


def _open(kind: str, tmp_path: Path, pg_url: str, **options: Any) -> Store:
    if kind == "memory":
        return agentstore.open(in_memory=True, **options)
    if kind == "file":
        return agentstore.open(tmp_path, **options)
    return agentstore.open(pg_url, **options)


@pytest.mark.parametrize("reducer", ["builtin", "custom"])
@pytest.mark.parametrize("kind", ["memory", "file", "postgres"])
@pytest.mark.parametrize("seed", [1, 2])
async def test_the_hot_state_after_random_batches_is_the_cold_fold(
    tmp_path: Path, pg_url: str, kind: str, seed: int, reducer: str
) -> None:
    rng = random.Random(seed)
    options: dict[str, Any] = {"snapshot_interval": 7}
    if reducer == "custom":
        options["reducer"] = _counting
    url = pg_url if kind == "postgres" else ""
    async with _open(kind, tmp_path, pg_url, **options) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)  # cached from the start
        sent: list[Event] = []
        n = 0
        for _ in range(25):
            batch: list[Event] = []
            for _ in range(rng.randrange(1, 12)):
                roll = rng.random()
                if sent and roll < 0.15:
                    batch.append(rng.choice(sent))  # retried from an earlier batch
                elif batch and roll < 0.25:
                    batch.append(rng.choice(batch))  # repeated within the batch
                else:
                    n += 1
                    batch.append(_event(rng, n))
            if rng.random() < 0.2:
                head = (await store.get_session(sid)).event_count
                with pytest.raises(ConcurrencyError):
                    await store.append_many(sid, batch, expected_seq=head + 1)
            if len(batch) == 1 and rng.random() < 0.5:
                await store.append(sid, batch[0])
            else:
                await store.append_many(sid, batch)
            sent.extend(batch)
            for event in batch:  # the caller changes what it passed
                event.payload["n"] = -1
                event.payload["items"][1]["deep"].append("changed")
            hot = await store.get_state(sid)
            assert _dump(hot) == _dump(await _cold(store, sid, url=url)), f"after {len(sent)} sent"
        snapshot = await store.backend.load_snapshot(sid, store._states.reducer_id)
        assert snapshot is not None and snapshot.version > 0
        at = await _cold(store, sid, snapshot.version, url)
        assert State.model_validate(snapshot.state).model_dump(mode="json") == _dump(at)


@pytest.mark.parametrize("kind", ["file", "postgres"])
@pytest.mark.parametrize("seed", [3, 4])
async def test_a_writing_store_snapshots_the_cold_fold(
    tmp_path: Path, pg_url: str, kind: str, seed: int
) -> None:
    # A store that only appends to a session it did not create (nothing cached): its
    # snapshots are folded from the log behind the appends and adopted into the cache.
    rng = random.Random(seed)
    url = pg_url if kind == "postgres" else ""
    async with _open(kind, tmp_path, pg_url) as first:
        sid = (await first.create_session()).id
        await first.append_many(sid, [_event(rng, n) for n in range(3)])
    sent: list[Event] = []
    n = 3
    async with _open(kind, tmp_path, pg_url, snapshot_interval=5) as store:
        for _ in range(20):
            batch: list[Event] = []
            for _ in range(rng.randrange(1, 9)):
                if sent and rng.random() < 0.15:
                    batch.append(rng.choice(sent))
                else:
                    n += 1
                    batch.append(_event(rng, n))
            await store.append_many(sid, batch)
            sent.extend(batch)
            for event in batch:
                event.payload["n"] = -1
        hot = await store.get_state(sid)
        assert _dump(hot) == _dump(await _cold(store, sid, url=url))
    async with _open(kind, tmp_path, pg_url, snapshot_interval=5) as reader:
        snapshot = await reader.backend.load_snapshot(sid, reader._states.reducer_id)
        assert snapshot is not None and snapshot.version > 3
        at = await _cold(reader, sid, snapshot.version, url)
        assert State.model_validate(snapshot.state).model_dump(mode="json") == _dump(at)

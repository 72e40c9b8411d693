"""Review of snapshot adoption on PostgreSQL: write-only stores' states equal a full fold.

PostgreSQL appends suspend, so a store that never reads a session adopts the state it
folds for a snapshot. Two such stores (two pools) append to one session at once, in
batches with retries of stored events and `expected_seq` conflicts; each must then serve
the state a full fold of the log gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import agentstore
from agentstore import ConcurrencyError, Event, EventType, Metadata, Store, new_event
from agentstore.backends.postgres import PostgresBackend


def _llm(rng: random.Random) -> Event:
    return new_event(
        EventType.LLM_RESPONSE,
        {"r": rng.random()},
        metadata=Metadata(tokens_in=rng.randrange(100), cost_usd=0.25),
    )


async def _writer(store: Store, sid: str, seed: int) -> None:
    rng = random.Random(seed)
    sent: list[Event] = []
    for _ in range(40):
        batch = [_llm(rng) for _ in range(rng.randrange(1, 5))]
        if sent and rng.random() < 0.3:
            batch.insert(rng.randrange(len(batch) + 1), rng.choice(sent))  # a retry
        if rng.random() < 0.2:
            # A conditional append that usually loses to the other writer.
            with contextlib.suppress(ConcurrencyError):
                await store.append_many(sid, batch, expected_seq=rng.randrange(5))
        else:
            await store.append_many(sid, batch)
        sent += batch


async def test_two_write_only_stores_on_one_session(pg_url: str) -> None:
    a = agentstore.open(PostgresBackend(pg_url, notify=False), snapshot_interval=6)
    b = agentstore.open(PostgresBackend(pg_url, notify=False), snapshot_interval=4)
    async with a, b:
        sid = (await a.create_session()).id
        await asyncio.gather(_writer(a, sid, 1), _writer(b, sid, 2))
        async with agentstore.open(pg_url, snapshot_interval=0, cache_size=0) as fresh:
            truth = await fresh.get_state(sid)
        assert truth.event_count > 80
        for store in (a, b):
            assert (await store.get_state(sid)).model_dump() == truth.model_dump()
    async with agentstore.open(pg_url, snapshot_interval=4) as later:  # from the snapshots
        assert (await later.get_state(sid)).model_dump() == truth.model_dump()

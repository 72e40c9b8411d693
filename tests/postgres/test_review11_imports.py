"""Review 11: PostgreSQL's paged imports (fork, import, copy) beside each other on one pool.

Each holds a connection for its transaction while its pages may be read from the same pool
(a fork reads its source as it goes): as many at once as the pool has connections each
waited for a read none could get, and all failed after pool_timeout (this failed before
its fix)."""

from __future__ import annotations

import asyncio

import pytest

import agentstore
from agentstore import new_event


@pytest.mark.parametrize("pool", [2, 3])
async def test_as_many_forks_at_once_as_the_pool_has_connections(pg_url: str, pool: int) -> None:
    url = f"{pg_url}&pool_max_size={pool}&pool_min_size=1&pool_timeout=10"
    async with agentstore.open(url) as store:
        sources = []
        for k in range(pool):
            sid = (await store.create_session()).id
            await store.append_many(
                sid, [new_event("custom", {"k": k, "i": i}) for i in range(1500)]
            )
            sources.append(sid)

        forks = await asyncio.gather(*(store.fork(sid, at_seq=1200) for sid in sources))

        for sid, fork in zip(sources, forks, strict=True):
            assert fork.event_count == 1200
            mine = [e.payload for e in await store.get_events(fork.id)]
            assert mine == [e.payload for e in await store.replay(sid, to_seq=1200)]

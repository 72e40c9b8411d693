"""Review 11: PostgreSQL's paged imports (fork, import, copy) beside each other on one pool.

Each holds a connection for its transaction while its pages may be read from the same pool
(a fork reads its source as it goes): as many at once as the pool has connections each
waited for a read none could get, and all failed after pool_timeout (this failed before
its fix). And an error of the events' own is raised as theirs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

import agentstore
from agentstore import Event, InvalidInputError, SessionNotFoundError, new_event


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


async def test_an_error_of_the_events_is_theirs_not_postgresqls(pg_url: str) -> None:
    # Before the fix: StorageUnavailableError "PostgreSQL is unreachable (the bucket hung
    # up); retrying is safe", and a retry with the spent generator made an empty session.
    async with agentstore.open(pg_url) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"i": i}) for i in range(1500)])
        events = [e.model_copy(update={"session_id": ""}) for e in await store.get_events(sid)]

        async def from_s3() -> AsyncIterator[Event]:
            for event in events:
                if event.sequence_number == 1200:  # a page was written in the transaction
                    raise ConnectionResetError("the bucket hung up")
                yield event

        spent = from_s3()
        session = {"id": "imported", "created_at": datetime(2026, 1, 2, tzinfo=UTC)}
        with pytest.raises(ConnectionResetError, match="the bucket hung up"):
            await store.import_session(session, spent)
        with pytest.raises(InvalidInputError, match="already run to its end"):
            await store.import_session(session, spent)
        with pytest.raises(SessionNotFoundError):
            await store.get_session("imported")
        assert (await store.import_session(session, iter(events))).event_count == 1500

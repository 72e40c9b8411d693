"""Shared flights: concurrent appends to different sessions in one statement keep every
per-append promise (1..N, expected_seq, idempotent retries, refused JSON, a statement the
server refuses) of a lone append."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import PostgresBackend
from agentstore.errors import (
    ConcurrencyError,
    InvalidEventError,
    SessionNotFoundError,
    StorageError,
)


def _flights(store: agentstore.Store) -> int:
    backend = store.backend
    assert isinstance(backend, PostgresBackend)
    return backend.shared_flights


async def test_many_writers_on_many_sessions_number_each_session_1_to_n(pg_url: str) -> None:
    async with agentstore.open(f"{pg_url}&pool_max_size=4", snapshot_interval=0) as store:
        sessions = [(await store.create_session()).id for _ in range(12)]

        async def writer(sid: str, name: str) -> None:
            for i in range(15):
                batch = [new_event("custom", {"w": name, "i": i, "k": k}) for k in range(i % 3 + 1)]
                await store.append_many(sid, batch)

        # Two writers per session: a session's second append waits for the next flight.
        await asyncio.gather(*(writer(sid, f"{sid}-{w}") for sid in sessions for w in "ab"))
        assert _flights(store) > 0
        for sid in sessions:
            events = await store.get_events(sid)
            assert [e.sequence_number for e in events] == list(range(1, 61))
            for w in "ab":  # each writer's events in its order, each batch contiguous
                mine = [e for e in events if e.payload["w"] == f"{sid}-{w}"]
                assert [(e.payload["i"], e.payload["k"]) for e in mine] == [
                    (i, k) for i in range(15) for k in range(i % 3 + 1)
                ]
            stamps = [e.timestamp for e in events]
            assert stamps == sorted(stamps)


async def _refuse_by_trigger(database_url: str, schema: str) -> None:
    """Make the server refuse any statement inserting an event whose payload has "refuse"."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f'CREATE FUNCTION "{schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS $$ '
            "BEGIN IF NEW.payload_json LIKE '%\"refuse\"%' THEN "
            "RAISE EXCEPTION 'refused by a trigger'; END IF; RETURN NEW; END $$; "
            f'CREATE TRIGGER refuse BEFORE INSERT ON "{schema}".events '
            f'FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse()'
        )
    finally:
        await conn.close()


async def test_each_append_of_a_flight_gets_its_own_outcome(
    pg_url: str, pg_database_url: str, pg_schema: str
) -> None:
    async with agentstore.open(pg_url, snapshot_interval=0) as store:
        ids = [(await store.create_session()).id for _ in range(6)]
        await _refuse_by_trigger(pg_database_url, pg_schema)
        first = new_event("custom", {"n": 0})
        await store.append(ids[1], first)
        await store.append(ids[2], new_event("custom", {"n": 0}))
        await store.delete_session(ids[5])
        before = _flights(store)
        # The first append flies alone; the others queue meanwhile and share the next flight.
        results = await asyncio.gather(
            store.append(ids[0], new_event("custom", {"n": 1})),
            store.append(ids[0], new_event("custom", {"n": 2})),
            store.append(ids[1], first),  # a retry: the stored event, nothing written
            store.append(ids[2], new_event("custom", {"n": 1}), expected_seq=0),  # lost race
            store.append(ids[3], new_event("custom", {"bad": "a\u0000b"})),  # jsonb would refuse
            store.append(ids[4], new_event("custom", {"n": 1}), expected_seq=0),
            store.append(ids[5], new_event("custom", {"n": 1})),  # deleted
            store.append(ids[3], new_event("custom", {"refuse": 1})),  # the server refuses
            return_exceptions=True,
        )
        assert _flights(store) > before
        assert [r.sequence_number for r in results[:3]] == [1, 2, 1]  # type: ignore[union-attr]
        assert results[2].id == first.id  # type: ignore[union-attr]
        assert isinstance(results[3], ConcurrencyError)
        assert isinstance(results[4], InvalidEventError)
        assert results[5].sequence_number == 1  # type: ignore[union-attr]
        assert isinstance(results[6], SessionNotFoundError)
        assert isinstance(results[7], StorageError) and "refused by a trigger" in str(results[7])
        assert [len(await store.get_events(sid)) for sid in ids[:5]] == [2, 1, 1, 0, 1]
        # A flight that succeeds while some of its appends match no session row.
        before = _flights(store)
        results = await asyncio.gather(
            store.append(ids[0], new_event("custom", {"n": 3})),
            store.append(ids[1], new_event("custom", {"n": 1}), expected_seq=0),  # lost
            store.append(ids[2], new_event("custom", {"n": 1})),
            store.append(ids[5], new_event("custom", {"n": 1})),  # deleted
            store.append(ids[4], new_event("custom", {"n": 2}), expected_seq=1),
            return_exceptions=True,
        )
        assert _flights(store) > before
        assert isinstance(results[1], ConcurrencyError)
        assert isinstance(results[3], SessionNotFoundError)
        assert [r.sequence_number for r in results[::2]] == [3, 2, 2]  # type: ignore[union-attr]


async def test_a_cancelled_caller_does_not_stall_the_others(pg_url: str) -> None:
    async with agentstore.open(pg_url, snapshot_interval=0) as store:
        ids = [(await store.create_session()).id for _ in range(8)]
        tasks = [
            asyncio.create_task(store.append(sid, new_event("custom", {"n": 1}))) for sid in ids
        ]
        await asyncio.sleep(0)
        tasks[3].cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(done[3], asyncio.CancelledError)
        assert all(d.sequence_number == 1 for i, d in enumerate(done) if i != 3)  # type: ignore[union-attr]
        # The cancelled append may or may not have been written; a retry is safe.
        for sid in ids:
            assert [e.sequence_number for e in await store.get_events(sid)] in ([], [1])


@pytest.mark.parametrize("writers", [1, 3])
async def test_expected_seq_appends_share_flights(pg_url: str, writers: int) -> None:
    async with agentstore.open(pg_url, snapshot_interval=0) as store:
        sessions = [(await store.create_session()).id for _ in range(writers * 2)]

        async def writer(sid: str) -> None:
            for seq in range(10):
                await store.append(sid, new_event("custom", {"seq": seq}), expected_seq=seq)

        await asyncio.gather(*(writer(sid) for sid in sessions))
        for sid in sessions:
            assert [e.payload["seq"] for e in await store.get_events(sid)] == list(range(10))

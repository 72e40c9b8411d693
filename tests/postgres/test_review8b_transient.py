"""Review 8b (PostgreSQL): a transient error (StorageUnavailableError: a statement timed
out, no pool connection in time, the server away for a moment) says nothing about which
session the store has cached. Since 2f7c590 the store dropped its cached state on any
StorageError, so every such error cost a cold fold of the whole session on the next call:
under load (statement timeouts, an exhausted pool) the folds add to the load."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StorageUnavailableError
from agentstore.events import Event
from agentstore.state import State, default_reducer
from tests.postgres.snapshot_table import connect

_folded: list[int] = []


def _counting_reducer(state: State, event: Event) -> State:
    """The default reducer, counting the events it folds."""
    _folded.append(event.sequence_number)
    return default_reducer(state, event)


@asynccontextmanager
async def _sessions_locked(pg_url: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """Every statement on the schema's sessions table waits in the server until the block
    ends (so a store's statement_timeout cancels it)."""
    conn = await connect(pg_url)
    try:
        async with conn.transaction():
            await conn.execute(f'LOCK TABLE "{schema}".sessions IN ACCESS EXCLUSIVE MODE')
            yield conn
    finally:
        await conn.close()


@pytest.mark.parametrize("through", ["get_state", "append"])
async def test_a_timed_out_call_does_not_cost_a_cold_fold(
    pg_url: str, pg_schema: str, through: str
) -> None:
    url = f"{pg_url}&statement_timeout=0.3"
    async with agentstore.open(url, reducer=_counting_reducer, snapshot_interval=0) as store:
        session = await store.create_session()
        sid = session.id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(300)])
        assert (await store.get_state(sid)).version == 300  # cached
        async with _sessions_locked(pg_url, pg_schema):
            call = (
                store.get_state(sid)
                if through == "get_state"
                else store.append(sid, new_event("custom", {"n": 300}))
            )
            with pytest.raises(StorageUnavailableError):
                await call
        _folded.clear()
        state = await store.get_state(sid)
        assert state.version == 300
        assert _folded == []  # the cached state answers: nothing folded again


@pytest.mark.parametrize("cached", [False, True])
async def test_snapshot_of_a_session_made_by_a_client_whose_clock_is_ahead_is_read(
    pg_url: str, no_timer: None, cached: bool
) -> None:
    # created_at is the clock of the client that made the session (an import keeps the
    # exporting host's), event times the server's. The session comes from a host an hour
    # ahead; this client appends across the snapshot interval, from its cache (the
    # snapshot is dated by the append) or cold (it folds the snapshot's state itself).
    # Either snapshot must land and be read by a cold store.
    async with agentstore.open(pg_url) as there:
        made = await there.create_session(name="from a host an hour ahead")
        await there.append_many(made.id, [new_event("custom", {"n": n}) for n in range(2)])
        events = await there.get_events(made.id)
        await there.delete_session(made.id)
    ahead = made.model_copy(update={"created_at": made.created_at + timedelta(hours=1)})
    async with agentstore.open(pg_url, snapshot_interval=4, reducer=_counting_reducer) as w:
        await w.import_session(ahead, events)
        if cached:
            await w.get_state(made.id)
        await w.append_many(made.id, [new_event("custom", {"n": n}) for n in (2, 3)])
    async with agentstore.open(pg_url, snapshot_interval=4, reducer=_counting_reducer) as cold:
        _folded.clear()
        assert (await cold.get_state(made.id)).version == 4
        assert _folded == []  # from the snapshot at 4: nothing to fold

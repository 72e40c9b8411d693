"""Every kind of call through `translated` turns a connection killed under its statement
(`pg_terminate_backend` while it waits for a lock) into `StorageUnavailableError`, and a
cancelled caller into the caller's own cancellation (never an agentstore error); either
way nothing of the call is written, and the same call then succeeds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

import agentstore
from agentstore import Store, new_event
from agentstore.errors import StorageUnavailableError


async def _waiting_pid(admin: asyncpg.Connection, within: float = 10.0) -> int:
    """The store's backend that waits for a lock (polled: the server has no event)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'agentstore' "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.02)
    raise AssertionError("no statement of the store waited for the lock")


async def _gone(admin: asyncpg.Connection, pid: int, within: float = 10.0) -> bool:
    """Whether backend `pid` stops waiting for its lock within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        waiting = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
            pid,
        )
        if not waiting:
            return True
        await asyncio.sleep(0.02)
    return False


Call = Callable[[Store, str], Awaitable[Any]]

_CALLS: dict[str, Call] = {
    "append": lambda store, sid: store.append(sid, new_event("custom", {"n": 9})),
    "append_many": lambda store, sid: store.append_many(
        sid, [new_event("custom", {"n": n}) for n in (9, 10)]
    ),
    "create_session": lambda store, sid: store.create_session(session_id="made-" + sid[:8]),
    "fork": lambda store, sid: store.fork(sid, at_seq=1),
    "delete_session": lambda store, sid: store.delete_session(sid),
    "replay": lambda store, sid: store.replay(sid),
    "update_session": lambda store, sid: store.update_session(sid, name="renamed"),
}


async def _picture(store: Store, sid: str) -> tuple[Any, ...]:
    sessions = sorted((s.id, s.name, s.event_count) for s in await store.list_sessions())
    return tuple(sessions), tuple(e.id for e in await store.replay(sid))


@pytest.mark.parametrize("ending", ["terminated", "cancelled"])
@pytest.mark.parametrize("call", sorted(_CALLS))
async def test_a_call_ended_under_its_statement_writes_nothing_and_says_so(
    pg_url: str,
    pg_database_url: str,
    pg_schema: str,
    admin: asyncpg.Connection,
    call: str,
    ending: str,
) -> None:
    async with agentstore.open(f"{pg_url}&pool_max_size=2", snapshot_interval=0) as store:
        sid = (await store.create_session(name="s")).id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in (1, 2)])
        before = await _picture(store, sid)
        holder = await asyncpg.connect(pg_database_url)
        try:
            async with holder.transaction():
                await holder.execute(
                    f'LOCK TABLE "{pg_schema}".sessions, "{pg_schema}".events '
                    "IN ACCESS EXCLUSIVE MODE"
                )
                task = asyncio.create_task(_CALLS[call](store, sid))
                pid = await _waiting_pid(admin)
                if ending == "terminated":
                    await admin.execute("SELECT pg_terminate_backend($1)", pid)
                    with pytest.raises(StorageUnavailableError, match="retrying is safe"):
                        await task
                else:
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
                    # The server gets a cancel request (sent as the caller's cancellation
                    # goes on): the statement ends without the lock it waited for.
                    assert await _gone(admin, pid)
        finally:
            await holder.close()
        assert await _picture(store, sid) == before  # nothing of it was written
        await _CALLS[call](store, sid)  # and the same call succeeds now

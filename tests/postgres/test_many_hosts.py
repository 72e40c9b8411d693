"""Many hosts, simulated: writer processes on one and on several sessions, connections
killed with pg_terminate_backend mid-append, and the server restarted under writers."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StorageUnavailableError

WRITER = Path(__file__).with_name("writer.py")
pytestmark = pytest.mark.slow


def run_writers(jobs: list[tuple[str, str, int, str]]) -> list[list[str]]:
    """Run one writer process per job at once; return each one's acknowledged ids."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, sid, str(count), tag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url, sid, count, tag in jobs
    ]
    acked: list[list[str]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines = out.split()
        assert lines[-1] == "done"
        acked.append(lines[:-1])
    return acked


async def check_log(store: agentstore.Store, sid: str, acked: list[str]) -> None:
    events = await store.get_events(sid)
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids)  # nothing repeated
    assert sorted(ids) == sorted(acked)  # nothing lost, nothing unacknowledged
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)  # type: ignore[type-var]


async def test_eight_processes_on_one_session(pg_url: str) -> None:
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        acked = await asyncio.to_thread(
            run_writers, [(pg_url, session.id, 40, f"w{i}") for i in range(8)]
        )
        assert all(len(a) == 40 for a in acked)
        await check_log(store, session.id, [i for a in acked for i in a])
        # each writer's own events keep their order
        events = await store.get_events(session.id)
        for tag in (f"w{i}" for i in range(8)):
            mine = [e.payload["n"] for e in events if e.payload["writer"] == tag]
            assert mine == list(range(40))


async def test_eight_processes_on_eight_sessions(pg_url: str) -> None:
    async with agentstore.open(pg_url) as store:
        sessions = [await store.create_session() for _ in range(8)]
        acked = await asyncio.to_thread(
            run_writers, [(pg_url, s.id, 40, f"w{i}") for i, s in enumerate(sessions)]
        )
        for session, ids in zip(sessions, acked, strict=True):
            await check_log(store, session.id, ids)


async def _terminate_ours(admin: asyncpg.Connection, database: str) -> int:
    return int(
        await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = 'agentstore'",
            database,
        )
    )


async def _append_retrying(
    store: agentstore.Store, sid: str, tag: str, rounds: int, failures: list[int]
) -> list[str]:
    """Append batches of 5, retrying each failed one (counted in `failures`)."""
    acked: list[str] = []
    for r in range(rounds):
        batch = [new_event("custom", {"w": tag, "r": r, "i": i}) for i in range(5)]
        deadline = time.monotonic() + 60  # a restart on a busy machine takes seconds
        while True:
            try:
                stored = await store.append_many(sid, batch)
                break
            except StorageUnavailableError:
                failures.append(1)
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)  # back-off before the retry
        assert [e.id for e in stored] == [e.id for e in batch]
        seqs = [e.sequence_number for e in stored]
        assert seqs == list(range(seqs[0], seqs[0] + 5))  # the batch stayed in one piece
        acked.extend(e.id for e in stored)
    return acked


async def test_terminated_connections_mid_append(pg_url: str, pg_database_url: str) -> None:
    database = pg_database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg_database_url)
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        failures: list[int] = []
        writers = [
            asyncio.create_task(_append_retrying(store, session.id, f"t{i}", 30, failures))
            for i in range(4)
        ]
        killed = 0
        schema = store.backend.options.schema  # type: ignore[attr-defined]
        for k in range(1, 11):  # a kill each time the writers have made 50 more events
            while not all(w.done() for w in writers):
                done = await admin.fetchval(
                    f'SELECT last_seq FROM "{schema}".sessions WHERE id = $1', session.id
                )
                if done >= 50 * k:
                    killed += await _terminate_ours(admin, database)
                    break
                await asyncio.sleep(0.005)  # pacing of the progress check
        acked = [i for w in writers for i in await w]
        await admin.close()
        assert killed >= 5 and failures  # appends were really cut off, and retried
        assert len(acked) == 4 * 30 * 5
        await check_log(store, session.id, acked)


def _pg_ctlcluster() -> list[str]:
    tool = shutil.which("pg_ctlcluster")
    if tool is None or os.geteuid() != 0:
        pytest.skip("restarting the server needs pg_ctlcluster, as root")
    version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
    return [tool, "--skip-systemctl-redirect", version, "main", "restart"]


async def test_server_restart_under_four_writers(pg_url: str) -> None:
    restart = _pg_ctlcluster()
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        failures: list[int] = []
        writers = [
            asyncio.create_task(_append_retrying(store, session.id, f"r{i}", 150, failures))
            for i in range(4)
        ]
        seen = 0
        async for _event in store.stream(session.id, follow=True):  # the writers are running
            seen += 1
            if seen == 50:
                break
        await asyncio.to_thread(subprocess.run, restart, check=True, timeout=60)
        acked = [i for w in writers for i in await w]
        assert failures  # the writers were running when the server went down
        assert len(acked) == 4 * 150 * 5
        await check_log(store, session.id, acked)

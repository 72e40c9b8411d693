"""A real streaming replica (pg_basebackup -R, started on its own port): reads through
`read_url` come from it, a store reads its own writes, and writing to it is refused."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StoreLockedError

pytestmark = pytest.mark.slow


def _bin_dir() -> Path:
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin") if (p / "pg_ctl").exists()), reverse=True)
    if not versions:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    return versions[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*cmd: str | Path) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *map(str, cmd)]


def _run(step: list[str], base: Path) -> None:
    done = subprocess.run(step, capture_output=True, text=True, timeout=120)
    if done.returncode:
        log = base / "log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"{step[4]} failed: {done.stderr.strip()}\n{detail}", pytrace=False)


@pytest.fixture(scope="module")
def replica_port(pg_database_url: str) -> Iterator[int]:
    """A hot standby of the test server, streaming from it, on a port of its own."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("starting a replica needs root (to run the server as postgres)")
    bin_dir = _bin_dir()
    primary = urlsplit(pg_database_url)
    # Not under pytest's tmp_path: the postgres user must be able to reach it.
    base = Path(tempfile.mkdtemp(prefix="agentstore-replica-"))
    data = base / "data"
    pw = pwd.getpwnam("postgres")
    os.chown(base, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    backup = _as_postgres(
        bin_dir / "pg_basebackup", "-h", primary.hostname or "127.0.0.1",
        "-p", str(primary.port or 5432), "-U", primary.username or "postgres",
        "-D", data, "-R", "-X", "stream", "-c", "fast",
    )  # fmt: skip
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c hot_standby=on"
    start = _as_postgres(
        bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", base / "log", "-w", "start"
    )
    stop = _as_postgres(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    try:
        _run(backup, base)
        # Debian keeps the configuration in /etc: the copy needs its own, minimal one.
        for name, text in (
            ("postgresql.conf", ""),
            ("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 trust\n"),
        ):
            if not (data / name).exists():
                (data / name).write_text(text)
                os.chown(data / name, pw.pw_uid, pw.pw_gid)
        _run(start, base)
        yield port
    finally:
        subprocess.run(stop, check=False, capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def replica_url(replica_port: int, pg_url: str) -> str:
    """This test's store URL, on the replica."""
    parts = urlsplit(pg_url)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{replica_port}").geturl()


async def _caught_up(primary_dsn: str, replica_dsn: str) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(primary_dsn)
    replica = await asyncpg.connect(replica_dsn)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        for _ in range(2000):
            if await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
                return
            await asyncio.sleep(0.005)  # pacing of the replay check
        raise AssertionError("the replica did not catch up in 10 s")
    finally:
        await primary.close()
        await replica.close()


async def _set_replay(replica_dsn: str, paused: bool) -> None:
    conn = await asyncpg.connect(replica_dsn)
    try:
        await conn.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")
    finally:
        await conn.close()


async def test_reads_go_to_the_replica_and_writers_read_their_writes(
    pg_url: str, replica_url: str
) -> None:
    primary_dsn, replica_dsn = pg_url.split("?")[0], replica_url.split("?")[0]
    async with agentstore.open(pg_url) as setup:  # creates the schema on the primary
        session = await setup.create_session(labels={"team": "a"})
        await setup.append(session.id, new_event("custom", {"n": 1}))
    await _caught_up(primary_dsn, replica_dsn)
    await _set_replay(replica_dsn, paused=True)
    try:
        async with (
            agentstore.open(pg_url, read_url=replica_url) as writer,
            agentstore.open(pg_url, read_url=replica_url) as other,
        ):
            await writer.append(session.id, new_event("custom", {"n": 2}))
            fresh = await writer.create_session(labels={"team": "a"})
            # The writer reads its own writes (from the primary: the replica is paused)...
            assert len(await writer.get_events(session.id)) == 2
            listed = await writer.list_sessions(labels={"team": "a"})
            assert {s.id for s in listed} == {session.id, fresh.id}
            # ...while another store's reads come from the paused replica.
            assert len(await other.replay(session.id)) == 1
            assert [s.id for s in await other.list_sessions(labels={"team": "a"})] == [session.id]
            await _set_replay(replica_dsn, paused=False)
            await _caught_up(primary_dsn, replica_dsn)
            assert len(await other.replay(session.id)) == 2
            assert len(await other.list_sessions(labels={"team": "a"})) == 2
    finally:
        await _set_replay(replica_dsn, paused=False)


async def test_writing_to_the_replica_is_refused_clearly(pg_url: str, replica_url: str) -> None:
    async with agentstore.open(pg_url) as setup:
        session = await setup.create_session()
    await _caught_up(pg_url.split("?")[0], replica_url.split("?")[0])
    async with agentstore.open(replica_url) as store:
        assert (await store.get_session(session.id)).id == session.id  # reads work
        with pytest.raises(StoreLockedError, match="read-only replica"):
            await store.append(session.id, new_event("custom", {}))
        with pytest.raises(StoreLockedError, match="read-only replica"):
            await store.create_session()

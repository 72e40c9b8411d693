"""`agentstore migrate` and `agentstore copy`, run as a user runs them (a real process)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

import agentstore
from agentstore import Metadata, Session, new_event
from agentstore.backends.postgres.schema import current_version
from tests.cli_process import agentstore_cli


def test_migrate_creates_then_reports_current(pg_url: str) -> None:
    behind = agentstore_cli("migrate", "--store", pg_url, "--check")
    assert behind.returncode == 1
    assert f"version 0 of {current_version()} (behind)" in behind.stdout
    done = agentstore_cli("migrate", "--store", pg_url)
    assert done.returncode == 0, done.stderr
    assert "applied: create sessions, events and snapshots" in done.stdout
    again = agentstore_cli("migrate", "--store", pg_url)
    assert (again.returncode, "applied" in again.stdout) == (0, False)
    assert agentstore_cli("migrate", "--store", pg_url, "--check").returncode == 0


async def test_migrate_refuses_a_newer_schema_in_one_line(
    pg_url: str, pg_database_url: str, pg_schema: str
) -> None:
    assert agentstore_cli("migrate", "--store", pg_url).returncode == 0
    conn = await asyncpg.connect(pg_database_url)
    try:
        await conn.execute(
            f'INSERT INTO "{pg_schema}".schema_migrations (version, name) VALUES (99, $1)', "x"
        )
    finally:
        await conn.close()
    out = agentstore_cli("migrate", "--store", pg_url)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "newer than this agentstore" in out.stderr
    assert "Traceback" not in out.stderr


async def _seed(path: Path) -> list[str]:
    base = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    ids = []
    async with agentstore.open(path) as store:
        for n in range(3):
            session = Session(
                id=str(uuid.uuid4()),
                name=f"run {n}",
                labels={"n": str(n)},
                created_at=base + timedelta(minutes=n),
                updated_at=base,
            )
            events = [
                new_event("user_message", {"text": f"héllo {n}", "f": 1.5, "big": 10**18}),
                new_event("llm_response", {"text": "ok"}).with_metadata(
                    Metadata(model="gpt-4o", tokens_in=12, tokens_out=3, cost_usd=0.0001)
                ),
                new_event("tool_called", {"args": {"b": [1, None], "a": {}}}),
            ]
            for i, event in enumerate(events):
                event.sequence_number, event.session_id = i + 1, session.id
                event.timestamp = base + timedelta(minutes=n, seconds=i)
            await store.import_session(session, events)
            ids.append(session.id)
    return ids


async def test_copy_file_to_postgres_and_back_is_byte_identical(
    pg_url: str, tmp_path: Path
) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    ids = await _seed(src)
    there = agentstore_cli("copy", src, pg_url)
    assert there.returncode == 0, there.stderr
    assert "copied 3 sessions" in there.stdout
    home = agentstore_cli("copy", pg_url, back)
    assert home.returncode == 0, home.stderr
    for sid in ids:
        original = (src / "events" / f"{sid}.jsonl").read_bytes()
        assert (back / "events" / f"{sid}.jsonl").read_bytes() == original
    async with agentstore.open(back) as copy, agentstore.open(src) as first:
        for sid in ids:
            a, b = await first.get_session(sid), await copy.get_session(sid)
            assert (a.name, a.labels, a.created_at) == (b.name, b.labels, b.created_at)


async def test_copy_resumes_and_extends(pg_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    ids = await _seed(src)
    first = agentstore_cli("copy", src, pg_url, "--session", ids[0][:8])  # a partial run
    assert "copied 1 sessions" in first.stdout, first.stderr
    async with agentstore.open(src) as store:
        await store.append(ids[0], new_event("custom", {"later": True}))
    rest = agentstore_cli("copy", src, pg_url)
    assert rest.returncode == 0, rest.stderr
    assert "copied 2 sessions, extended 1, skipped 0" in rest.stdout
    again = agentstore_cli("copy", src, pg_url)
    assert "copied 0 sessions, extended 0, skipped 3" in again.stdout
    async with agentstore.open(pg_url) as pg, agentstore.open(src) as store:
        for sid in ids:
            assert [e.to_json() for e in await pg.get_events(sid)] == [
                e.to_json() for e in await store.get_events(sid)
            ]


def test_copy_refuses_memory(tmp_path: Path) -> None:
    out = agentstore_cli("copy", "memory://", tmp_path / "x")
    assert out.returncode == 2
    assert "in-memory" in out.stderr and "Traceback" not in out.stderr


async def test_migrators_in_several_processes_at_once(pg_url: str, pg_database_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "agentstore_cli", "migrate", "--store", pg_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], outputs
    applied = sum(out.count("applied: ") for out, _ in outputs)
    assert applied == current_version()  # each step ran once, in one of the processes
    schema = pg_url.rsplit("schema=", 1)[1]
    conn = await asyncpg.connect(pg_database_url)
    try:
        versions = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
    finally:
        await conn.close()
    assert sorted(r["version"] for r in versions) == list(range(1, current_version() + 1))


async def test_global_store_and_read_store_options(pg_url: str, tmp_path: Path) -> None:
    ids = await _seed(tmp_path / "src")
    assert agentstore_cli("--store", pg_url, "migrate").returncode == 0
    assert agentstore_cli("copy", tmp_path / "src", pg_url).returncode == 0
    listed = agentstore_cli("--store", pg_url, "sessions", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert {ids[0], ids[1], ids[2]} <= set(listed.stdout.replace('"', " ").split())
    # The primary doubles as its own "replica" here: the option is passed through.
    replay = agentstore_cli("--store", pg_url, "--read-store", pg_url, "replay", ids[0][:8])
    assert replay.returncode == 0, replay.stderr
    assert "tool_called" in replay.stdout
    alone = agentstore_cli("--read-store", pg_url, "sessions")
    assert alone.returncode == 2 and "--read-store needs --store" in alone.stderr


async def test_copy_refuses_a_different_session_with_the_same_id(
    pg_url: str, tmp_path: Path
) -> None:
    ids = await _seed(tmp_path / "src")
    assert agentstore_cli("copy", tmp_path / "src", pg_url).returncode == 0
    async with agentstore.open(tmp_path / "src") as store:  # the id taken by another log
        await store.delete_session(ids[1])
        await store.create_session(session_id=ids[1])
        for n in range(3):
            await store.append(ids[1], new_event("custom", {"n": n}))
    out = agentstore_cli("copy", tmp_path / "src", pg_url)
    assert out.returncode == 1
    assert f"session {ids[1]} differs" in out.stderr and "Traceback" not in out.stderr

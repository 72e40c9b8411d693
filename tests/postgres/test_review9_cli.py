"""Review 9: `agentstore migrate` and `agentstore copy` against PostgreSQL, in real
processes (each test failed before its fix)."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agentstore
from agentstore import AgentStoreError, Session, new_event
from tests.cli_process import agentstore_cli, one_event_export


def test_migrate_check_hint_names_the_same_schema(pg_url: str, pg_schema: str) -> None:
    """The hint to run `agentstore migrate` dropped ?schema=, so it migrated another one."""
    url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:secret@")
    behind = agentstore_cli("migrate", "--store", url, "--check")
    assert behind.returncode == 1
    hint = behind.stderr.strip()
    assert hint.startswith("error: run: agentstore migrate --store "), hint
    assert f"schema={pg_schema}" in hint and "secret" not in hint
    # The command as shown, run by a shell (with the password given back), migrates the
    # schema that was checked.
    command = shlex.split(hint.removeprefix("error: run: ").replace(":***@", ":secret@"))
    assert command[:3] == ["agentstore", "migrate", "--store"]
    done = agentstore_cli(*command[1:])
    assert done.returncode == 0, done.stderr
    assert agentstore_cli("migrate", "--store", url, "--check").returncode == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://[::1/db", "Invalid IPv6 URL"),
        ("postgresql://u:s3cr3t@127.0.0.1:abc/db", "port 'abc'"),
        ("postgresql://127.0.0.1:99999/db", "port '99999'"),
        ("postgresql://h1:5432,h2:x/db", "port 'x'"),
    ],
)
def test_a_malformed_url_is_a_usage_error(url: str, says: str) -> None:
    """A bad host or port reached the driver and ended as 'internal error (ValueError...)'."""
    out = agentstore_cli("--store", url, "sessions")
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "internal error" not in out.stderr
    assert "invalid PostgreSQL URL" in out.stderr and says in out.stderr
    assert "s3cr3t" not in out.stderr


async def test_round_trip_of_a_log_written_in_batches_is_byte_identical(
    pg_url: str, tmp_path: Path
) -> None:
    """docs/postgres.md: copying back 'gives back the same event lines, byte for byte'.
    A log written by append_many marks its batches (batch_end); the copies lost them."""
    src, back = tmp_path / "src", tmp_path / "back"

    async def grow(sid: str | None = None) -> str:
        async with agentstore.open(src) as store:
            sid = sid or (await store.create_session(name="batched")).id
            await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(3)])
            await store.append(sid, new_event("custom", {"alone": True}))
            await store.append_many(sid, [new_event("custom", {"m": n}) for n in range(2)])
        return sid

    sid = await grow()
    name = f"events/{sid}.jsonl"
    for _ in range(2):  # copied, then extended after SRC grew
        there = agentstore_cli("copy", src, pg_url)
        assert there.returncode == 0, there.stderr
        home = agentstore_cli("copy", pg_url, back)
        assert home.returncode == 0, home.stderr
        assert (back / name).read_bytes() == (src / name).read_bytes()
        await grow(sid)
    assert "extended 1" in there.stdout and "extended 1" in home.stdout


async def _seed_many(path: Path, sessions: int, events: int) -> None:
    async with agentstore.open(path) as store:
        for n in range(sessions):
            made = await store.create_session(name=f"run {n}", labels={"n": str(n)})
            batch = [new_event("custom", {"n": n, "i": i, "pad": "x" * 200}) for i in range(events)]
            await store.append_many(made.id, batch)


async def _sessions_in(url_or_path: str | Path) -> int:
    try:
        async with agentstore.open(url_or_path, read_only=True) as store:
            return len(await store.list_sessions(limit=10_000))
    except AgentStoreError:  # not made yet (no directory, no schema)
        return 0


async def _same(a: str | Path, b: str | Path) -> None:
    async with agentstore.open(a, read_only=True) as x, agentstore.open(b, read_only=True) as y:
        left, right = await x.list_sessions(limit=10_000), await y.list_sessions(limit=10_000)
        assert sorted(s.id for s in left) == sorted(s.id for s in right)
        for session in left:
            there = await y.get_session(session.id)
            assert (there.name, there.labels, there.created_at, there.event_count) == (
                session.name,
                session.labels,
                session.created_at,
                session.event_count,
            )
            assert [e.to_json() for e in await x.get_events(session.id)] == [
                e.to_json() for e in await y.get_events(session.id)
            ]


@pytest.mark.parametrize("direction", ["file-to-postgres", "postgres-to-file"])
async def test_copy_killed_with_sigkill_then_run_again_is_complete(
    pg_url: str, tmp_path: Path, direction: str
) -> None:
    """A real SIGKILL in the middle of a copy; the same command again completes it, with
    nothing duplicated (each session is copied in one atomic step)."""
    files = tmp_path / "files"
    total = 120
    if direction == "file-to-postgres":
        await _seed_many(files, total, 100)
        src, dst = str(files), pg_url
    else:
        await _seed_many(tmp_path / "seed", total, 100)
        assert agentstore_cli("copy", tmp_path / "seed", pg_url).returncode == 0
        src, dst = pg_url, str(files)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentstore_cli", "copy", src, dst],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        copied = 0
        while proc.poll() is None and copied < 3:
            copied = await _sessions_in(dst)
            await asyncio.sleep(0.01)  # pacing of the progress check
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the copy ended before it could be killed"
    partial = await _sessions_in(dst)
    assert 3 <= partial < total
    again = agentstore_cli("copy", src, dst)
    assert again.returncode == 0, again.stderr
    copied_now = int(again.stdout.split()[1])
    skipped = int(again.stdout.split("skipped ")[1].split()[0])
    assert (copied_now, skipped) == (total - partial, partial), again.stdout
    await _same(src, dst)


def test_a_token_budget_beyond_64_bits_is_refused_and_spoils_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL stored it (jsonb), read it back as a float, and from then on every read
    of the session and every listing of the store failed with an internal error."""
    assert agentstore_cli("migrate", "--store", pg_url).returncode == 0
    made = agentstore_cli("--store", pg_url, "import", str(_export(tmp_path)))
    assert made.returncode == 0, made.stderr
    out = agentstore_cli("--store", pg_url, "update", "s-1", "--max-tokens", str(2**64))
    assert out.returncode == 2, out.stderr
    assert "internal error" not in out.stderr and "--max-tokens" in out.stderr
    listed = agentstore_cli("--store", pg_url, "sessions", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert agentstore_cli("--store", pg_url, "replay", "s-1").returncode == 0


def _export(tmp_path: Path) -> Path:
    path = tmp_path / "s-1.json"
    export = one_event_export("2026-01-02T03:04:05Z", "2026-01-02T03:04:06Z", name="one")
    path.write_text(json.dumps(export))
    return path


def test_verify_checks_the_global_store(pg_url: str, tmp_path: Path) -> None:
    """`agentstore --store URL verify` ignored --store and looked for ./agent-data."""
    assert agentstore_cli("--store", pg_url, "import", str(_export(tmp_path))).returncode == 0
    out = subprocess.run(
        [sys.executable, "-m", "agentstore_cli", "--store", pg_url, "verify"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # no agent-data here
    )
    assert out.returncode == 0, out.stderr
    assert "checked 1 session, 1 event" in out.stdout


def test_serve_serves_the_global_store(pg_url: str, tmp_path: Path) -> None:
    """`agentstore --store URL serve` served (and created) ./agent-data instead."""
    assert agentstore_cli("--store", pg_url, "import", str(_export(tmp_path))).returncode == 0
    command = ["--store", pg_url, "serve", "--http-port", "0", "--no-grpc"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentstore_cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the address, once listening (b"" if it failed)
        base = json.loads(first)["listening"]["http"]
        with urllib.request.urlopen(f"{base}/v1/sessions", timeout=30) as reply:
            listed = json.loads(reply.read())
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert [s["id"] for s in listed["sessions"]] == ["s-1"]
    assert not (tmp_path / "agent-data").exists()


@pytest.mark.parametrize(("option", "shown"), [("--from-seq", 0), ("--to-seq", 1), ("--limit", 1)])
def test_replay_numbers_beyond_64_bits_read_as_on_files(
    pg_url: str, tmp_path: Path, option: str, shown: int
) -> None:
    """On PostgreSQL they failed with 'DataError: ... value out of int64 range' (exit 1),
    where a data directory shows what such a bound lets through."""
    assert agentstore_cli("--store", pg_url, "import", str(_export(tmp_path))).returncode == 0
    out = agentstore_cli("--store", pg_url, "replay", "s-1", option, str(2**64), "-o", "json")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == shown


async def test_go_zero_time_survives_postgres(pg_url: str, tmp_path: Path) -> None:
    """A Go agent's unset time.Time is 0001-01-01T00:00:00Z; copied into PostgreSQL, the
    session broke the listing of the whole store."""
    src, back = tmp_path / "src", tmp_path / "back"
    zero = datetime(1, 1, 1, tzinfo=UTC)
    async with agentstore.open(src) as store:
        event = new_event("custom", {"n": 1})
        event.sequence_number, event.session_id, event.timestamp = 1, "go-1", zero
        await store.import_session(Session(id="go-1", created_at=zero, updated_at=zero), [event])
    assert agentstore_cli("copy", src, pg_url).returncode == 0
    listed = agentstore_cli("--store", pg_url, "sessions")
    assert listed.returncode == 0, listed.stderr
    assert agentstore_cli("copy", pg_url, back).returncode == 0
    name = "events/go-1.jsonl"
    assert (back / name).read_bytes() == (src / name).read_bytes()

"""Review 9: `agentstore migrate` and `agentstore copy` against PostgreSQL, in real
processes (each test failed before its fix)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event


def agentstore_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentstore_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


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


@pytest.mark.xfail(
    strict=True,
    reason="review 9, open: a log written by append_many carries 'batch_end' on its lines "
    "(the file backend's torn-batch marker); PostgreSQL keeps no batches and an import "
    "writes none, so the copy back lacks them (and their crc32c differs). Needs the batch "
    "bounds kept per event, or the promise narrowed to the event fields",
)
async def test_round_trip_of_a_log_written_in_batches_is_byte_identical(
    pg_url: str, tmp_path: Path
) -> None:
    """docs/postgres.md: copying back 'gives back the same event lines, byte for byte'."""
    src, back = tmp_path / "src", tmp_path / "back"
    async with agentstore.open(src) as store:
        session = await store.create_session(name="batched")
        await store.append_many(session.id, [new_event("custom", {"n": n}) for n in range(3)])
    assert agentstore_cli("copy", src, pg_url).returncode == 0
    assert agentstore_cli("copy", pg_url, back).returncode == 0
    name = f"events/{session.id}.jsonl"
    assert (back / name).read_bytes() == (src / name).read_bytes()

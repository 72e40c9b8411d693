"""Review 9: `agentstore migrate` and `agentstore copy` against PostgreSQL, in real
processes (each test failed before its fix)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest


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

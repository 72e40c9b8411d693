"""Review 9: inputs and data directories that made the CLI fail with an internal error,
exit 0 on a failure, or give a wrong hint (each test failed before its fix)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import Result

from agentstore import Budget, InvalidInputError
from tests.cli.conftest import BIN, FLIGHT_ID
from tests.cli_process import one_event_export

Cli = Callable[..., Result]
AGENTSTORE = str(BIN / "agentstore")


@pytest.mark.parametrize(
    "args",
    [
        ["replay", FLIGHT_ID, "--since", "999999999999d"],
        ["replay", FLIGHT_ID, "--until", "99999999999999999999w"],
        ["replay", FLIGHT_ID, "--since", "5000000d"],
        ["replay", FLIGHT_ID, "--since", "0001-01-01T00:00:00+01:00"],
        ["replay", FLIGHT_ID, "--until", "9999-12-31T23:59:59-14:00"],
        ["prune", "--older-than", "5000000d", "--yes"],
        ["prune", "--older-than", "9" * 400 + "s", "--dry-run"],
    ],
)
def test_times_out_of_the_calendar_are_usage_errors(cli: Cli, flight: str, args: list[str]) -> None:
    """A time or duration beyond what a date can hold was an internal OverflowError."""
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert f"invalid {args[-2] if args[0] == 'replay' else '--older-than'}" in result.output
    assert "out of range" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["sessions", "--format", "json"],
        ["replay", FLIGHT_ID, "--format", "json"],
        ["replay", FLIGHT_ID, "--format", "jsonl"],
        ["export", FLIGHT_ID],
        ["stats", FLIGHT_ID, "--format", "json"],
        ["replay", FLIGHT_ID],
    ],
    ids=" ".join,
)
def test_a_closed_stdout_is_a_closed_pipe(flight: str, args: list[str]) -> None:
    """`agentstore replay ID -o json >&-` (no stdout at all: Python's sys.stdout is None)
    ended with 'internal error (AttributeError ...)'; it now ends as a closed pipe does."""
    done = subprocess.run(
        [AGENTSTORE, *args],
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.close(1),  # the child starts without a stdout
        timeout=30,
    )
    assert (done.returncode, done.stderr) == (0, b"")


def test_a_token_budget_beyond_64_bits_is_a_usage_error(cli: Cli, flight: str) -> None:
    """On a data directory it ended with 'internal error (TypeError: Integer exceeds
    64-bit range)' (and PostgreSQL stored it and could read nothing after)."""
    result = cli("update", FLIGHT_ID, "--max-tokens", str(2**63))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and "--max-tokens" in result.output
    assert cli("update", FLIGHT_ID, "--max-tokens", str(2**63 - 1)).exit_code == 0


def test_a_budget_refuses_a_token_limit_beyond_64_bits() -> None:
    """No store keeps an integer beyond 64 bits (the file's JSON, PostgreSQL's jsonb)."""
    with pytest.raises(InvalidInputError):
        Budget(max_tokens=2**63)
    assert Budget(max_tokens=2**63 - 1).max_tokens == 2**63 - 1


@pytest.mark.parametrize(
    ("created_at", "event_time"),
    [
        ("0001-01-01T00:00:00+01:00", "2026-01-01T00:00:01Z"),
        ("2026-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"),
        ("2026-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00"),
    ],
)
def test_an_import_with_a_time_outside_the_calendar_in_utc_is_refused(
    cli: Cli, data_dir: Path, tmp_path: Path, created_at: str, event_time: str
) -> None:
    """Such a time ended with 'internal error (OverflowError ...)'; a session created at
    one was written first, and from then on `agentstore sessions` failed for every session."""
    export = tmp_path / "export.json"
    export.write_bytes(orjson.dumps(one_event_export(created_at, event_time)))
    result = cli("import", str(export))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output and "out of range" in result.output
    listed = cli("sessions", "-o", "json")
    assert (listed.exit_code, listed.stdout) == (0, "[]\n") or not data_dir.exists()


def test_an_explicit_data_dir_beats_the_store_of_the_environment(cli: Cli, flight: str) -> None:
    """With $AGENTSTORE_STORE set (say, in a .env for the team's database), `agentstore
    --data-dir ./local sessions` listed the database instead of ./local."""
    env = {
        "AGENTSTORE_STORE": "postgresql://nohost.invalid/db",
        "AGENTSTORE_READ_STORE": "postgresql://replica.invalid/db",
    }
    data_dir = os.environ["AGENTSTORE_DATA_DIR"]
    result = cli("--data-dir", data_dir, "sessions", "-o", "json", env=env)
    assert result.exit_code == 0, result.output
    assert [s["id"] for s in orjson.loads(result.stdout)] == [FLIGHT_ID]


def test_data_dir_and_store_both_given_is_a_usage_error(cli: Cli, flight: str) -> None:
    """`agentstore --store URL --data-dir DIR sessions` used the URL without a word."""
    data_dir = os.environ["AGENTSTORE_DATA_DIR"]
    result = cli("--store", "postgresql://nohost.invalid/db", "--data-dir", data_dir, "sessions")
    assert result.exit_code == 2, result.output
    assert "--data-dir or --store, not both" in result.output

"""Messages a user can act on: CLI words (flags, commands), asked only when it matters."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pexpect
import pytest
from typer.testing import Result

from tests.cli.conftest import BIN, FLIGHT_EVENTS, seed_session

Cli = Callable[..., Result]
AGENTSTORE = str(BIN / "agentstore")
TIMEOUT = 30  # a ceiling for a child process; nothing waits unless it fails


def test_fork_past_the_end_speaks_in_flags(cli: Cli, flight: str) -> None:
    result = cli("fork", flight, "--at", "99")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --at 99 is past the end of session {flight}: it has 10 events, "
        "so use --at 0 to 10\n"
    )


def test_data_dir_messages_name_where_it_came_from(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = cli("--data-dir", str(a_file), "sessions")
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {a_file} (from --data-dir) is a file, not a data directory\n",
    )
    missing = tmp_path / "missing"
    result = cli("sessions", "--data-dir", str(missing))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: no data directory at {missing} (from --data-dir)\n",
    )
    monkeypatch.setenv("AGENTSTORE_DATA_DIR", str(missing))
    result = cli("sessions")
    assert result.stderr == f"error: no data directory at {missing} (from $AGENTSTORE_DATA_DIR)\n"
    monkeypatch.delenv("AGENTSTORE_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    result = cli("sessions")
    assert result.stderr == (
        "error: no data directory at agent-data: pass --data-dir DIR or set $AGENTSTORE_DATA_DIR\n"
    )


def _without_root_powers(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI without the power to ignore file permissions (as root has)."""
    prefix: list[str] = []
    if os.getuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop DAC powers")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*prefix, AGENTSTORE, *args], capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.fixture
def restore_modes(tmp_path: Path) -> Iterator[None]:
    """Give the tmp directory back its permissions, so pytest can remove it."""
    yield
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.usefixtures("restore_modes")
def test_a_read_only_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed_session(data, FLIGHT_EVENTS, session_id="flight", name="flight-search")
    for path in [data, *data.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    for command in (["fork", "flight", "--at", "2"], ["prune", "--older-than", "1s", "--yes"]):
        done = _without_root_powers("--data-dir", str(data), *command)
        assert done.returncode == 1
        assert done.stderr == (
            f"error: 'agentstore {command[0]}' writes to the data directory, and {data} "
            "(from --data-dir) is not writable by you; read-only commands (sessions, replay, "
            "stats, export) still work\n"
        )
        assert "read_only=True" not in done.stderr
    assert _without_root_powers("--data-dir", str(data), "stats", "flight").returncode == 0
    data.chmod(0o000)
    done = _without_root_powers("--data-dir", str(data), "sessions")
    assert (done.returncode, done.stderr) == (
        1,
        f"error: cannot read the data directory {data} (from --data-dir): permission denied\n",
    )


def _aged(data_dir: Path) -> None:
    now = datetime.now(UTC)
    event = [("user_message", {"content": "x"}, {}, 0)]
    seed_session(data_dir, event, session_id="ancient", created=now - timedelta(days=90))
    seed_session(data_dir, event, session_id="fresh", created=now - timedelta(hours=1))


def _terminal(*args: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100", "NO_COLOR": "1"}
    return pexpect.spawn(
        AGENTSTORE, list(args), env=env, dimensions=(40, 100), timeout=TIMEOUT, encoding="utf-8"
    )


def test_interactive_prune_asks_without_saying_dry_run(data_dir: Path) -> None:
    _aged(data_dir)
    child = _terminal("prune", "--older-than", "30d")
    child.expect(r"Delete these 1 session \([0-9.]+ [KM]?B\)\? \[y/N\]: ")
    shown = child.before or ""
    assert "ancient" in shown
    assert "dry run" not in shown and "Would delete" not in shown
    child.sendline("n")
    child.expect("Nothing deleted.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_prune_with_nothing_to_delete(cli: Cli, data_dir: Path) -> None:
    _aged(data_dir)
    for extra in ([], ["--dry-run"]):
        result = cli("prune", "--older-than", "1000d", *extra)
        assert result.exit_code == 0
        assert result.stdout == "Nothing to delete: no session has been idle for 1000d.\n"


def test_delete_with_yes(cli: Cli, flight: str) -> None:
    result = cli("delete", flight[:6], "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"Deleted session {flight} (flight-search) and its 10 events.\n"
    assert orjson.loads(cli("sessions", "-o", "json").stdout) == []
    assert cli("delete", flight, "--yes").exit_code == 1  # gone


def test_delete_asks_on_a_terminal(flight: str) -> None:
    child = _terminal("delete", "latest")
    child.expect(rf"Delete session {flight} \(flight-search\) and its 10 events\? \[y/N\]: ")
    child.sendline("n")
    child.expect("Nothing deleted.")
    child.expect(pexpect.EOF)
    child = _terminal("delete", "latest")
    child.expect(r"\[y/N\]: ")
    child.sendline("y")
    child.expect("Deleted session")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

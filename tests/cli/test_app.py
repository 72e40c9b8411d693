"""The app itself: --data-dir before and after the command, env var, --version, --help."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

import agentstore
from tests.cli.conftest import seed_session
from tests.conftest import GO_DATA, GO_SHORT

Cli = Callable[..., Result]


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"agentstore {agentstore.__version__}\n"


def test_help_lists_commands_and_examples(cli: Cli) -> None:
    out = cli("--help").stdout
    for command in ("sessions", "replay", "stats", "export", "import", "fork", "prune"):
        assert command in out
    assert "Examples:" in out
    assert "agentstore replay 3f2a -o json | jq" in out
    assert "AGENTSTORE_DATA_DIR" in out


@pytest.mark.parametrize(
    "command", ["sessions", "replay", "stats", "export", "import", "fork", "prune"]
)
def test_every_command_has_help(cli: Cli, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "--data-dir" in result.stdout


def test_data_dir_before_and_after_the_command(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(GO_DATA, other)
    before = cli("--data-dir", str(other), "sessions", "-o", "jsonl")
    after = cli("sessions", "--data-dir", str(other), "-o", "jsonl")  # the Go original's form
    assert before.exit_code == after.exit_code == 0
    assert before.stdout == after.stdout
    assert GO_SHORT in before.stdout


def test_data_dir_after_the_command_wins(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(GO_DATA, other)
    result = cli("--data-dir", str(tmp_path / "missing"), "replay", "d7", "--data-dir", str(other))
    assert result.exit_code == 0
    assert "flight-search" in result.stdout


def test_data_dir_from_the_environment(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "env-dir"
    shutil.copytree(GO_DATA, other)
    result = cli("stats", "d7", "-o", "json", env={"AGENTSTORE_DATA_DIR": str(other)})
    assert result.exit_code == 0
    assert '"name":"flight-search"' in result.stdout
    # A flag beats the environment.
    assert (
        cli(
            "--data-dir",
            str(tmp_path / "nope"),
            "sessions",
            env={"AGENTSTORE_DATA_DIR": str(other)},
        ).exit_code
        == 1
    )


def test_missing_data_dir_is_one_line(cli: Cli, data_dir: Path) -> None:
    result = cli("sessions")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no data directory at {data_dir}: pass --data-dir DIR or set AGENTSTORE_DATA_DIR\n"
    )


def test_unknown_option_and_command_are_one_line_exit_2(cli: Cli) -> None:
    for args in (["sessions", "--bogus"], ["bogus"], ["replay"]):
        result = cli(*args)
        assert result.exit_code == 2, args
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: ")


def test_no_arguments_shows_help(cli: Cli) -> None:
    result = cli()
    assert "Usage" in result.output
    assert "Commands" in result.output


def test_read_only_commands_never_write(cli: Cli, data_dir: Path) -> None:
    seed_session(data_dir, [("user_message", {"content": "hi"}, {}, 0)] * 150, session_id="big")
    (data_dir / "snapshots").mkdir(exist_ok=True)
    for snap in (data_dir / "snapshots").iterdir():
        snap.unlink()  # a reader must not write the snapshot it could make

    def tree() -> dict[str, tuple[int, int]]:
        return {
            str(p.relative_to(data_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(data_dir.rglob("*"))
        }

    before = tree()
    for args in (
        ["sessions"],
        ["sessions", "-o", "json"],
        ["replay", "big"],
        ["replay", "big", "-o", "json"],
        ["stats", "big"],
        ["stats", "big", "--at", "120"],
        ["export", "big"],
        ["prune", "--older-than", "0s", "--dry-run"],
    ):
        assert cli(*args).exit_code == 0, args
    assert tree() == before

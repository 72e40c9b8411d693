"""`agentstore fork` and `agentstore prune`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from typer.testing import Result

from tests.cli.conftest import seed_session

Cli = Callable[..., Result]


def test_fork_prints_the_new_id(cli: Cli, flight: str) -> None:
    result = cli("fork", flight[:8], "--at", "4", "--name", "retry")
    assert result.exit_code == 0
    new_id = result.stdout.strip()
    assert new_id != flight
    events = orjson.loads(cli("replay", new_id, "-o", "json").stdout)
    assert [e["type"] for e in events] == ["user_message", "plan_created", "tool_called", "error"]
    info = orjson.loads(cli("stats", new_id, "-o", "json").stdout)["session"]
    assert info["name"] == "retry"
    assert info["labels"]["forked_from"] == flight
    assert info["forked_at"] == 4


def test_fork_errors(cli: Cli, flight: str) -> None:
    beyond = cli("fork", flight, "--at", "99")
    assert beyond.exit_code == 2
    assert "beyond the end" in beyond.stderr
    assert cli("fork", flight).exit_code == 2  # --at is required
    assert cli("fork", "nope", "--at", "1").exit_code == 1


def _aged(data_dir: Path) -> None:
    now = datetime.now(UTC)
    event = [("user_message", {"content": "x" * 100}, {}, 0)]
    seed_session(
        data_dir,
        event,
        session_id="ancient",
        labels={"env": "dev"},
        created=now - timedelta(days=90),
    )
    seed_session(
        data_dir,
        event,
        session_id="old-prod",
        labels={"env": "prod"},
        created=now - timedelta(days=40),
    )
    seed_session(data_dir, event, session_id="fresh", created=now - timedelta(hours=1))


def _ids(cli: Cli) -> list[str]:
    return sorted(s["id"] for s in orjson.loads(cli("sessions", "-o", "json").stdout))


def test_prune_dry_run_deletes_nothing(cli: Cli, data_dir: Path) -> None:
    _aged(data_dir)
    result = cli("prune", "--older-than", "30d", "--dry-run", env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "ancient" in result.stdout
    assert "old-prod" in result.stdout
    assert "fresh" not in result.stdout
    assert "Would delete 2 sessions, freeing" in result.stdout
    assert _ids(cli) == ["ancient", "fresh", "old-prod"]


def test_prune_deletes_and_reports_bytes(cli: Cli, data_dir: Path) -> None:
    _aged(data_dir)
    size = (data_dir / "events" / "ancient.jsonl").stat().st_size
    result = cli("prune", "--older-than", "60d", env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "ancient" in result.stdout
    assert "Deleted 1 session, freed" in result.stdout
    assert size > 0
    assert _ids(cli) == ["fresh", "old-prod"]


def test_prune_by_label(cli: Cli, data_dir: Path) -> None:
    _aged(data_dir)
    result = cli("prune", "--older-than", "2w", "--label", "env=prod")
    assert "Deleted 1 session" in result.stdout
    assert _ids(cli) == ["ancient", "fresh"]


def test_prune_bad_age(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir()
    result = cli("prune", "--older-than", "a month")
    assert result.exit_code == 2
    assert "invalid --older-than 'a month'" in result.stderr

"""`agentstore update`: rename, relabel and re-budget a session from the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from typer.testing import Result

from agentstore import Budget
from tests.cli.conftest import FLIGHT_EVENTS, seed_session

Cli = Callable[..., Result]


def _session(cli: Cli, ref: str) -> dict[str, object]:
    result = cli("stats", ref, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return dict(orjson.loads(result.stdout)["session"])


def test_rename_and_relabel(cli: Cli, flight: str) -> None:
    result = cli(
        "update", flight[:6], "--name", "retry", "-l", "env=prod", "-l", "team=a",
        "--remove-label", "agent",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("retry  ")
    after = _session(cli, "retry")  # the new name works as a session reference
    assert after["id"] == flight
    assert after["labels"] == {"env": "prod", "team": "a"}
    events = orjson.loads(cli("replay", flight, "-o", "json").stdout)
    assert len(events) == len(FLIGHT_EVENTS)  # the log is untouched


def test_budget_is_set_merged_and_removed(cli: Cli, data_dir: Path) -> None:
    sid = seed_session(
        data_dir, FLIGHT_EVENTS, session_id="b", budget=Budget(max_tokens=1000, max_cost_usd=1.0)
    )
    result = cli("update", sid, "--max-cost", "2.5", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["budget"] == {"max_tokens": 1000, "max_cost_usd": 2.5}
    # The new limit applies at once: 1,170 tokens are over a 1,000-token budget.
    stats = orjson.loads(cli("stats", sid, "-o", "json").stdout)
    assert stats["budget"]["remaining_tokens"] == 0
    cli("update", sid, "--max-tokens", "5000")
    assert _session(cli, sid)["budget"] == {"max_tokens": 5000, "max_cost_usd": 2.5}
    assert "budget: none" in cli("update", sid, "--no-budget").stdout
    assert "budget" not in _session(cli, sid)


def test_update_usage_errors(cli: Cli, flight: str) -> None:
    for args, message in (
        ([], "nothing to change"),
        (["--no-budget", "--max-cost", "1"], "--no-budget removes the budget"),
        (["-l", "env=x", "--remove-label", "env"], "both name 'env'"),
        (["--remove-label", "nope"], "--remove-label 'nope': the session has no such label"),
        (["--max-cost", "-1"], "--max-cost"),
        (["--max-cost", "inf"], "--max-cost must be a finite number"),
        (["-l", "novalue"], "invalid --label 'novalue'"),
    ):
        result = cli("update", flight, *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1
    assert _session(cli, flight)["name"] == "flight-search"
    assert cli("update", "nope", "--name", "x").exit_code == 1

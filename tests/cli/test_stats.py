"""`agentstore stats`: totals, per type, per model, per tool, open calls, budget, --at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from typer.testing import Result

import agentstore
from tests.cli.conftest import seed_session

Cli = Callable[..., Result]


def test_json(cli: Cli, flight: str) -> None:
    result = cli("stats", flight[:4], "--format", "json")
    assert result.exit_code == 0
    doc = orjson.loads(result.stdout)
    assert doc["session"]["name"] == "flight-search"
    assert doc["session"]["labels"] == {"agent": "travel", "env": "test"}
    assert doc["events"] == 10
    assert doc["tool_calls"] == 2
    assert doc["errors"] == 1
    assert doc["last_error"] == "flight API timed out"
    assert doc["tokens"] == {"input": 850, "output": 320, "total": 1170, "cost_usd": 0.018}
    assert doc["duration_ms"] == 65_000
    assert doc["types"]["tool_called"] == 2
    assert doc["types"]["cache_hit"] == 1
    assert doc["models"] == {
        "gpt-4o": {"calls": 1, "tokens_in": 850, "tokens_out": 320, "cost_usd": 0.018}
    }
    # One call failed (the error ended it), one returned after 1.25 s (paired by call_id).
    assert doc["tools"] == {
        "search_flights": {
            "calls": 2,
            "results": 1,
            "failed": 1,
            "total_ms": 1250.0,
            "mean_ms": 1250.0,
        }
    }
    assert doc["open_calls"] == []
    assert doc["budget"] is None


def test_at_is_time_travel(cli: Cli, flight: str) -> None:
    doc = orjson.loads(cli("stats", flight, "--at", "3", "-o", "json").stdout)
    assert doc["at_seq"] == 3
    assert doc["events"] == 3
    assert doc["tool_calls"] == 1
    assert doc["errors"] == 0
    assert doc["tokens"]["total"] == 0
    assert doc["types"] == {"plan_created": 1, "tool_called": 1, "user_message": 1}
    # At event 3 the search had been called and not answered: an open call.
    assert doc["open_calls"] == [
        {"call_id": "c1", "sequence_number": 3, "type": "tool_called", "name": "search_flights"}
    ]
    assert orjson.loads(cli("stats", flight, "--at", "0", "-o", "json").stdout)["events"] == 0


def test_at_beyond_the_end(cli: Cli, flight: str) -> None:
    result = cli("stats", flight, "--at", "11")
    assert result.exit_code == 2
    assert "beyond the end" in result.stderr


def test_text(cli: Cli, flight: str) -> None:
    out = cli("stats", flight, env={"COLUMNS": "120"}).stdout
    for expected in (
        "flight-search",
        "agent=travel",
        "created      2026-01-02 03:04:05 UTC",
        "duration     1m05s",
        "events       10",
        "tool calls   2",
        "errors       1  last: flight API timed out",
        "tokens       1,170 (850 in / 320 out)",
        "cost         $0.0180",
    ):
        assert expected in out, expected
    assert "gpt-4o      1        850         320  $0.0180" in out
    assert "search_flights      2        1       1       1.25s      1.25s" in out
    assert "tool_called         2" in out


def test_text_shows_open_calls_and_budget(cli: Cli, data_dir: Path) -> None:
    sid = seed_session(
        data_dir,
        [
            (
                "llm_request",
                {"model": "m"},
                {"model": "m", "call_id": "q1", "tokens_in": 300, "cost_usd": 0.25},
                0,
            ),
            ("tool_called", {"tool": "fetch"}, {"tool_name": "fetch", "call_id": "t1"}, 10),
        ],
        session_id="budgeted",
        budget=agentstore.Budget(max_cost_usd=1.0, max_tokens=1000),
    )
    out = cli("stats", sid, env={"COLUMNS": "120"}).stdout
    assert "budget left  $0.7500 of $1.00 · 700 of 1,000 tokens" in out
    assert "Calls without a result" in out
    assert "q1" in out
    assert "t1" in out
    doc = orjson.loads(cli("stats", sid, "-o", "json").stdout)
    assert doc["budget"]["remaining_cost_usd"] == 0.75
    assert [c["call_id"] for c in doc["open_calls"]] == ["q1", "t1"]


def test_go_fixture(cli: Cli, go_data: Path) -> None:
    doc = orjson.loads(cli("--data-dir", str(go_data), "stats", "cad4", "-o", "json").stdout)
    assert doc["events"] == 250
    assert doc["models"]["claude-3-opus"]["calls"] == 50

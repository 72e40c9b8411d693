"""`agentstore sessions`: newest first, labels, limit, table and JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
from typer.testing import Result

from tests.cli.conftest import BASE_TIME, seed_session

Cli = Callable[..., Result]


def _three(data_dir: Path) -> None:
    for index, (sid, name, env) in enumerate(
        [("a-old", "first", "dev"), ("b-mid", None, "prod"), ("c-new", "third", "prod")]
    ):
        seed_session(
            data_dir,
            [
                (
                    "llm_response",
                    {"content": "x"},
                    {"tokens_in": 100, "tokens_out": 10 * (index + 1), "cost_usd": 0.5},
                    0,
                ),
                ("tool_called", {"tool": "t"}, {}, 1),
            ],
            session_id=sid,
            name=name,
            labels={"env": env},
            created=BASE_TIME + timedelta(minutes=index),
        )


def test_table_newest_first_with_all_columns(cli: Cli, data_dir: Path) -> None:
    _three(data_dir)
    result = cli("sessions")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "EVENTS",
        "TOKENS",
        "COST",
        "CREATED",
        "LAST",
        "EVENT",
    ]
    assert [line.split()[0] for line in lines[2:]] == ["c-new", "b-mid", "a-old"]
    assert "(unnamed)" in lines[3]
    assert lines[2].split()[1:6] == ["third", "2", "130", "$0.5000", "2026-01-02"]


def test_label_filter_and_limit(cli: Cli, data_dir: Path) -> None:
    _three(data_dir)
    prod = orjson.loads(cli("sessions", "--label", "env=prod", "-f", "json").stdout)
    assert [s["id"] for s in prod] == ["c-new", "b-mid"]
    assert [s["id"] for s in orjson.loads(cli("sessions", "-n", "1", "-f", "json").stdout)] == [
        "c-new"
    ]
    assert [
        s["id"] for s in orjson.loads(cli("sessions", "--offset", "2", "-f", "json").stdout)
    ] == ["a-old"]
    assert orjson.loads(cli("sessions", "-l", "env=prod", "-l", "x=y", "-f", "json").stdout) == []


def test_json_has_the_on_disk_fields(cli: Cli, data_dir: Path) -> None:
    _three(data_dir)
    found = orjson.loads(cli("sessions", "-f", "json").stdout)
    on_disk = orjson.loads((data_dir / "sessions" / "c-new.json").read_bytes())
    on_disk.pop("has_log")  # the file backend's own bookkeeping, not a session field
    assert {k: found[0][k] for k in on_disk if k not in ("updated_at", "event_count")} == {
        k: v for k, v in on_disk.items() if k not in ("updated_at", "event_count")
    }
    assert found[0]["event_count"] == 2
    lines = cli("sessions", "-f", "jsonl").stdout.splitlines()
    assert [orjson.loads(line) for line in lines] == found


def test_empty_data_dir(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir()
    assert cli("sessions").stdout == "No sessions.\n"
    assert cli("sessions", "-f", "json").stdout == "[]\n"
    assert cli("sessions", "-f", "jsonl").stdout == ""


def test_bad_label_is_a_usage_error(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir()
    result = cli("sessions", "--label", "env")
    assert result.exit_code == 2
    assert result.stderr == "error: invalid --label 'env': use KEY=VALUE, e.g. --label env=prod\n"


def test_full_ids_on_a_wide_terminal(cli: Cli, data_dir: Path) -> None:
    sid = seed_session(data_dir, [], session_id="0123456789abcdef-long-id")
    assert sid in cli("sessions", env={"COLUMNS": "140"}).stdout
    narrow = cli("sessions", env={"COLUMNS": "80"}).stdout
    assert sid not in narrow
    assert "01234567 " in narrow

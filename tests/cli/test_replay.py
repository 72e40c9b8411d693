"""`agentstore replay`: the timeline (golden output), JSON for jq, filters and errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import Result

from tests.cli.conftest import FLIGHT_EVENTS, seed_session

GOLDEN = Path(__file__).parent / "golden"
Cli = Callable[..., Result]


def _golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
    assert actual == path.read_text(), (
        f"timeline changed; rerun with UPDATE_GOLDEN=1 if intended ({path})"
    )


@pytest.mark.parametrize("width", [100, 60])
def test_timeline_golden(cli: Cli, flight: str, width: int) -> None:
    result = cli("replay", flight[:6], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    _golden(f"timeline_{width}.txt", result.stdout)
    assert all(len(line) <= width for line in result.stdout.splitlines())


def test_timeline_summarises_each_type(cli: Cli, flight: str) -> None:
    out = cli("replay", flight, env={"COLUMNS": "200"}).stdout
    assert "Find flights from Berlin to Munich on Friday" in out  # the user's message
    assert "3 steps: search_flights → rank → recommend" in out  # plan steps
    assert 'search_flights(from="BER", to="MUC")' in out  # tool and arguments
    assert "2 items, 100 B, in 1.25s, call #5" in out  # result size, paired duration
    assert "gpt-4o · 850 in" in out
    assert "320 out · $0.0180 · in 1.80s" in out  # tokens, cost, paired duration
    assert "TimeoutError: flight API timed out (recoverable)" in out
    assert "10 events · 1,170 tokens (850 in / 320 out) · $0.0180 · 2 tool calls · 1 error" in out


def test_duration_ms_wins_over_pairing(cli: Cli, data_dir: Path) -> None:
    sid = seed_session(
        data_dir,
        [
            ("tool_called", {"tool": "t"}, {"tool_name": "t", "call_id": "x"}, 0),
            (
                "tool_result",
                {"result": 1},
                {"tool_name": "t", "call_id": "x", "duration_ms": 42},
                5000,
            ),
        ],
        session_id="dur",
    )
    out = cli("replay", sid).stdout
    assert "in 42ms" in out
    assert "in 5.00s" not in out


def test_json_is_the_on_disk_events(cli: Cli, flight: str, data_dir: Path) -> None:
    result = cli("replay", flight, "--format", "json")
    assert result.exit_code == 0
    events = orjson.loads(result.stdout)
    fields = ["id", "session_id", "sequence_number", "type", "payload", "timestamp", "metadata"]
    log = (data_dir / "events" / f"{flight}.jsonl").read_bytes().splitlines()
    # Every event field as written on disk (the backend may add bookkeeping of its own).
    on_disk = [{k: v for k, v in orjson.loads(line).items() if k in fields} for line in log]
    assert events == on_disk
    assert all(list(event) == fields for event in events)
    assert [e["type"] for e in events][:3] == ["user_message", "plan_created", "tool_called"]


def test_jsonl_is_one_event_per_line(cli: Cli, flight: str) -> None:
    lines = cli("replay", flight, "-o", "jsonl").stdout.splitlines()
    assert len(lines) == len(FLIGHT_EVENTS)
    assert [orjson.loads(line)["sequence_number"] for line in lines] == list(range(1, 11))


def test_json_of_no_events_is_an_empty_array(cli: Cli, flight: str) -> None:
    assert orjson.loads(cli("replay", flight, "-o", "json", "--type", "custom").stdout) == []


def _seqs(result: Result) -> list[int]:
    assert result.exit_code == 0, result.output
    return [e["sequence_number"] for e in orjson.loads(result.stdout)]


def test_type_filter(cli: Cli, flight: str) -> None:
    assert _seqs(cli("replay", flight, "-o", "json", "--type", "tool_called,error")) == [3, 4, 5]
    assert _seqs(cli("replay", flight, "-o", "json", "-t", "error", "-t", "cache_hit")) == [4, 10]


def test_seq_bounds_are_inclusive(cli: Cli, flight: str) -> None:
    assert _seqs(cli("replay", flight, "-o", "json", "--from-seq", "4", "--to-seq", "6")) == [
        4,
        5,
        6,
    ]
    assert _seqs(cli("replay", flight, "-o", "json", "--from-seq", "9")) == [9, 10]
    assert _seqs(cli("replay", flight, "-o", "json", "--limit", "2", "--from-seq", "3")) == [3, 4]


def test_since_until_iso(cli: Cli, flight: str) -> None:
    # BASE_TIME is 2026-01-02T03:04:05Z; event 4 is at +5.030 s, event 9 at +8.110 s.
    result = cli(
        "replay",
        flight,
        "-o",
        "json",
        "--since",
        "2026-01-02T03:04:10.030Z",
        "--until",
        "2026-01-02T03:04:13.110+00:00",
    )
    assert _seqs(result) == [4, 5, 6, 7, 8, 9]
    # No zone means UTC.
    assert _seqs(cli("replay", flight, "-o", "json", "--since", "2026-01-02T03:05:00")) == [10]


def test_since_relative(cli: Cli, flight: str, data_dir: Path) -> None:
    # The fixture is in 2026-01; "10m" ago is long after it, "100000d" long before.
    assert _seqs(cli("replay", flight, "-o", "json", "--since", "10m")) == []
    assert len(_seqs(cli("replay", flight, "-o", "json", "--since", "100000d"))) == 10
    assert _seqs(cli("replay", flight, "-o", "json", "--until", "1h30m")) != []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "Tool-Called"], "invalid --type 'Tool-Called'"),
        (["--since", "yesterday"], "invalid --since 'yesterday'"),
        (["--until", "10 minutes"], "invalid --until '10 minutes'"),
        (["--from-seq", "5", "--to-seq", "2"], "--to-seq 2 is before --from-seq 5"),
        (["--follow", "--format", "json"], "--follow prints events as they come"),
        (["--from-seq", "0"], "Invalid value for '--from-seq'"),
        (["--format", "yaml"], "yaml"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    cli: Cli, flight: str, args: list[str], message: str
) -> None:
    result = cli("replay", flight, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_prefix_resolution(cli: Cli, data_dir: Path) -> None:
    seed_session(data_dir, [], session_id="abc-111", name="one")
    seed_session(data_dir, [], session_id="abc-222", name="two")
    assert "abc-111" in cli("replay", "abc-1").stdout

    ambiguous = cli("replay", "abc")
    assert ambiguous.exit_code == 1
    assert "ambiguous" in ambiguous.stderr
    assert "abc-111" in ambiguous.stderr
    assert "abc-222" in ambiguous.stderr

    missing = cli("replay", "zzz")
    assert missing.exit_code == 1
    assert missing.stderr == "error: session 'zzz' not found\n"


def test_unknown_session_in_empty_data_dir(cli: Cli, data_dir: Path) -> None:
    result = cli("replay", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no data directory at ")


def test_corrupt_log_is_one_line(cli: Cli, flight: str, data_dir: Path) -> None:
    log = data_dir / "events" / f"{flight}.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = b"{not json\n"
    log.write_bytes(b"".join(lines))
    result = cli("replay", flight)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert f"{flight}.jsonl:3" in result.stderr


def test_debug_shows_the_traceback(cli: Cli) -> None:
    plain = cli("replay", "x")
    assert "Traceback" not in plain.stderr
    debug = cli("--debug", "replay", "x")
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr
    assert debug.stderr.rstrip().endswith("pass --data-dir DIR or set AGENTSTORE_DATA_DIR")


def test_no_colour_in_a_pipe_colour_on_request(cli: Cli, flight: str) -> None:
    assert "\x1b" not in cli("replay", flight).stdout
    coloured = cli("replay", flight, env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b[" in coloured  # this test can fail: colour does exist
    assert "\x1b" not in cli(
        "replay", flight, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}
    ).stdout.replace("\x1b[1m", "").replace("\x1b[2m", "").replace("\x1b[0m", "").replace(
        "\x1b[3m", ""
    )


def test_step_refuses_without_a_terminal(cli: Cli, flight: str) -> None:
    result = cli("replay", flight, "--step")
    assert result.exit_code == 2
    assert "--step needs an interactive terminal" in result.stderr

"""`agentstore export` / `import`: a session moves between data directories intact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from typer.testing import Result

from agentstore import Budget
from tests.cli.conftest import FLIGHT_EVENTS, FLIGHT_ID, seed_session

Cli = Callable[..., Result]


def test_bare_export_is_replay_json(cli: Cli, flight: str, tmp_path: Path) -> None:
    exported = cli("export", flight, "--bare").stdout
    assert exported == cli("replay", flight, "-o", "json").stdout
    out = tmp_path / "run.json"
    assert cli("export", flight[:5], "--bare", "--output", str(out)).exit_code == 0
    assert out.read_text() == exported
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_round_trip_keeps_ids_sequence_numbers_and_times(
    cli: Cli, flight: str, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    cli("export", flight, "--output", str(out))
    other = tmp_path / "other"
    result = cli("--data-dir", str(other), "import", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{FLIGHT_ID}\n"
    copied = cli("--data-dir", str(other), "replay", flight, "-o", "json").stdout
    assert orjson.loads(copied) == orjson.loads(out.read_bytes())["events"]


def test_export_pipe_import_round_trips_the_session(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    # By default the export keeps name, labels and budget: `export | import -` copies it.
    sid = seed_session(
        data_dir,
        FLIGHT_EVENTS,
        session_id="budgeted",
        name="flight-search",
        labels={"agent": "travel"},
        budget=Budget(max_tokens=5000, max_cost_usd=0.5),
    )
    exported = cli("export", sid).stdout
    doc = orjson.loads(exported)
    assert doc["session"]["name"] == "flight-search"
    assert len(doc["events"]) == len(FLIGHT_EVENTS)
    other = tmp_path / "other"
    assert cli("--data-dir", str(other), "import", "-", input=exported).exit_code == 0
    source = orjson.loads(cli("sessions", "-o", "json").stdout)[0]
    copy = orjson.loads(cli("--data-dir", str(other), "sessions", "-o", "json").stdout)[0]
    assert copy == source
    assert copy["labels"] == {"agent": "travel"}
    assert copy["budget"] == {"max_tokens": 5000, "max_cost_usd": 0.5}
    assert cli("--data-dir", str(other), "export", sid).stdout == exported


def test_bare_and_with_session_conflict(cli: Cli, flight: str) -> None:
    result = cli("export", flight, "--bare", "--with-session")
    assert result.exit_code == 2
    assert "--bare" in result.stderr


def test_import_from_stdin_as_json_lines(cli: Cli, flight: str, tmp_path: Path) -> None:
    lines = cli("replay", flight, "-o", "jsonl").stdout
    other = tmp_path / "other"
    assert cli("--data-dir", str(other), "import", "-", input=lines).exit_code == 0
    assert cli("--data-dir", str(other), "replay", flight, "-o", "jsonl").stdout == lines


def test_import_refuses_to_overwrite(cli: Cli, flight: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    cli("export", flight, "--output", str(out))
    result = cli("import", str(out))
    assert result.exit_code == 1
    assert result.stderr == f"error: session '{flight}' already exists\n"


def test_import_bad_files(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for content, message in (
        ("{nope", "not JSON or JSON lines"),
        ('{"a": 1}', "expected a JSON array of events"),
        ("[]", "no events, so no session id"),
        ('[{"type": "x"}]', "event 1 is not a stored event"),
        (
            '[{"session_id": "s", "sequence_number": 1, "type": "X", '
            '"timestamp": "2026-01-01T00:00:00Z"}]',
            "event 1: not a valid event: invalid type 'X'",
        ),
        ('{"session": {"id": "s"}, "events": []}', "session created_at: Field required"),
        (
            '[{"session_id": "s", "sequence_number": 1, "type": "x", '
            '"timestamp": "2026-01-01T00:00:00Z", "metadata": {"cost_usd": true}}]',
            "event 1: not a valid event: invalid metadata: cost_usd: must be a number, not bool",
        ),
        (
            '{"session": {"id": "s", "created_at": "2026-01-01T00:00:00Z", '
            '"budget": {"max_tokens": "5"}}, "events": []}',
            "session budget: invalid budget: max_tokens: must be a number, not str",
        ),
    ):
        bad.write_text(content)
        result = cli("import", str(bad))
        assert result.exit_code == 2, content
        assert message in result.stderr
        assert result.stderr.count("\n") == 1
        assert "errors.pydantic.dev" not in result.stderr
    missing = cli("import", str(tmp_path / "missing.json"))
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr


def test_export_to_an_unwritable_place(cli: Cli, flight: str, tmp_path: Path) -> None:
    result = cli("export", flight, "--output", str(tmp_path / "no" / "such" / "dir.json"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot write")


def test_json_lines_import_stops_whole_on_a_bad_line(cli: Cli, flight: str, tmp_path: Path) -> None:
    lines = cli("replay", flight, "-o", "jsonl").stdout.splitlines(keepends=True)
    assert len(lines) > 3
    other = tmp_path / "other"
    for bad, message in (
        ("{not json\n", "line 3 is not JSON"),
        ('{"type": "x"}\n', "event 3 is not a stored event"),
    ):
        broken = tmp_path / "broken.jsonl"
        broken.write_text("".join([*lines[:2], bad, *lines[2:]]))
        result = cli("--data-dir", str(other), "import", str(broken))
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.count("\n") == 1
        # Lines before the bad one were read (and written to a temp log): none of it stays.
        listed = cli("--data-dir", str(other), "sessions", "-o", "json")
        assert listed.exit_code == 0 and orjson.loads(listed.stdout) == []
    good = tmp_path / "good.jsonl"
    good.write_text("".join(lines))
    assert cli("--data-dir", str(other), "import", str(good)).exit_code == 0
    assert cli("--data-dir", str(other), "replay", flight, "-o", "jsonl").stdout == "".join(lines)

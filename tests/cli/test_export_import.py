"""`agentstore export` / `import`: a session moves between data directories intact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
from typer.testing import Result

from tests.cli.conftest import FLIGHT_ID

Cli = Callable[..., Result]


def test_export_is_replay_json(cli: Cli, flight: str, tmp_path: Path) -> None:
    exported = cli("export", flight).stdout
    assert exported == cli("replay", flight, "-f", "json").stdout
    out = tmp_path / "run.json"
    assert cli("export", flight[:5], "-o", str(out)).exit_code == 0
    assert out.read_text() == exported
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_round_trip_keeps_ids_sequence_numbers_and_times(
    cli: Cli, flight: str, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    cli("export", flight, "-o", str(out))
    other = tmp_path / "other"
    result = cli("--data-dir", str(other), "import", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{FLIGHT_ID}\n"
    assert cli("--data-dir", str(other), "replay", flight, "-f", "json").stdout == out.read_text()


def test_with_session_keeps_name_and_labels(cli: Cli, flight: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    cli("export", flight, "--with-session", "-o", str(out))
    doc = orjson.loads(out.read_bytes())
    assert doc["session"]["name"] == "flight-search"
    assert len(doc["events"]) == 10
    other = tmp_path / "other"
    assert cli("--data-dir", str(other), "import", str(out)).exit_code == 0
    copy = orjson.loads(cli("--data-dir", str(other), "sessions", "-f", "json").stdout)[0]
    assert copy["name"] == "flight-search"
    assert copy["labels"] == {"agent": "travel", "env": "test"}
    assert copy["created_at"] == "2026-01-02T03:04:05Z"


def test_import_from_stdin_as_json_lines(cli: Cli, flight: str, tmp_path: Path) -> None:
    lines = cli("replay", flight, "-f", "jsonl").stdout
    other = tmp_path / "other"
    assert cli("--data-dir", str(other), "import", "-", input=lines).exit_code == 0
    assert cli("--data-dir", str(other), "replay", flight, "-f", "jsonl").stdout == lines


def test_import_refuses_to_overwrite(cli: Cli, flight: str, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    cli("export", flight, "-o", str(out))
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
    ):
        bad.write_text(content)
        result = cli("import", str(bad))
        assert result.exit_code == 2, content
        assert message in result.stderr
        assert result.stderr.count("\n") == 1
    missing = cli("import", str(tmp_path / "missing.json"))
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr


def test_export_to_an_unwritable_place(cli: Cli, flight: str, tmp_path: Path) -> None:
    result = cli("export", flight, "-o", str(tmp_path / "no" / "such" / "dir.json"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot write")

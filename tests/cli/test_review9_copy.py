"""Review 9: `agentstore copy` between two data directories, with a damaged source
(each test failed before its fix)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import Result

from tests.cli.conftest import FLIGHT_EVENTS, seed_session

Cli = Callable[..., Result]

IDS = [f"0000000{n}-aaaa-4bbb-8ccc-000000000000" for n in range(3)]


def _seed(src: Path) -> None:
    for sid in IDS:
        seed_session(src, FLIGHT_EVENTS[:3], session_id=sid, name=f"run {sid[7]}")


def _copied(cli: Cli, dst: Path) -> list[str]:
    listed = cli("--data-dir", str(dst), "sessions", "-o", "json")
    return sorted(s["id"] for s in orjson.loads(listed.stdout)) if dst.exists() else []


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_text("not json"), id="not-json"),
        pytest.param(lambda p: p.write_text("[1, 2]"), id="not-an-object"),
        pytest.param(lambda p: p.write_bytes(b""), id="empty"),
        pytest.param(lambda p: (p.unlink(), p.mkdir()), id="a-directory"),
    ],
)
def test_a_session_file_it_cannot_read_fails_the_copy(
    cli: Cli, tmp_path: Path, damage: Callable[[Path], object]
) -> None:
    """The listing leaves such a session out (with a warning), and copy said it had
    copied everything and exited 0: a script that then removed SRC lost that session."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    damage(src / "sessions" / f"{IDS[1]}.json")
    result = cli("copy", str(src), str(dst))
    assert result.exit_code == 1, result.output
    assert f"{IDS[1]}.json" in result.stderr
    assert "Traceback" not in result.output
    # The sessions it can read are copied all the same.
    assert _copied(cli, dst) == [IDS[0], IDS[2]]


def test_another_session_with_the_same_id_and_no_events_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    """With no events in SRC, a DST session of the same id (another one: created at
    another time, with its own events) was counted as 'skipped already there'."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    seed_session(src, [], session_id=IDS[0], name="empty in SRC")
    later = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    seed_session(dst, FLIGHT_EVENTS[:3], session_id=IDS[0], name="other", created=later)
    result = cli("copy", str(src), str(dst))
    assert result.exit_code == 1, result.output
    assert f"session {IDS[0]} differs between the two stores" in result.stderr
    assert "skipped 0 already there" in result.stdout  # not counted as there


@pytest.mark.parametrize("wanted", ["ffff", "", "../x"])
def test_a_copy_that_fails_before_writing_leaves_no_target_behind(
    cli: Cli, tmp_path: Path, wanted: str
) -> None:
    """An unknown or invalid --session failed only after DST was opened, which made an
    empty data directory there (a typo in `copy ./data ./backu --session x` left ./backu)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    result = cli("copy", str(src), str(dst), "--session", wanted)
    assert result.exit_code != 0
    assert not dst.exists()


def test_a_copy_in_a_script_writes_nothing_to_stderr(cli: Cli, tmp_path: Path) -> None:
    """Off a terminal the progress bar left an empty line on stderr (in every cron mail)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    result = cli("copy", str(src), str(dst))
    assert result.exit_code == 0
    assert result.stdout.startswith("copied 3 sessions")
    assert result.stderr == ""


def test_session_is_named_as_everywhere_else(cli: Cli, tmp_path: Path) -> None:
    """--session took only ids and prefixes: a name or `latest`, which every other
    command takes, was 'not found'."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    result = cli("copy", str(src), str(dst), "--session", "run 1", "--session", "latest")
    assert result.exit_code == 0, result.output
    assert _copied(cli, dst) == sorted({IDS[1], IDS[2]})


@pytest.mark.parametrize("bad", [0, 1])
def test_a_session_it_cannot_copy_does_not_stop_the_others(
    cli: Cli, tmp_path: Path, bad: int
) -> None:
    """The first session that failed (a corrupt log line, a payload DST cannot store)
    ended the copy, so the sessions after it were never copied, run after run."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    log = src / "events" / f"{IDS[bad]}.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + b"not json\n" + b"".join(lines[2:]))
    result = cli("copy", str(src), str(dst))
    assert result.exit_code == 1, result.output
    assert _copied(cli, dst) == sorted(set(IDS) - {IDS[bad]})
    assert f"session {IDS[bad]} not copied: " in result.stderr
    assert "not valid JSON" in result.stderr and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 1 of 3 sessions was not copied (see above): repair or delete it, then run "
        "the copy again"
    )
    assert result.stdout.startswith("copied 2 sessions")


def test_a_copy_run_again_brings_over_a_new_name_labels_and_budget(
    cli: Cli, tmp_path: Path
) -> None:
    """A session renamed, relabelled or re-budgeted in SRC after a copy was 'skipped,
    already there' with its old name, labels and budget in DST, however often copy ran."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    assert cli("copy", str(src), str(dst)).exit_code == 0
    changed = cli(
        "--data-dir", str(src), "update", IDS[1], "--name", "renamed", "-l", "env=prod",
        "--max-tokens", "500",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    again = cli("copy", str(src), str(dst))
    assert again.exit_code == 0, again.output
    assert "updated 1" in again.stdout and "skipped 2 already there" in again.stdout
    copied = orjson.loads(cli("--data-dir", str(dst), "export", IDS[1]).stdout)["session"]
    assert (copied["name"], copied["labels"], copied["budget"]) == (
        "renamed",
        {"env": "prod"},
        {"max_tokens": 500},
    )
    assert "updated" not in cli("copy", str(src), str(dst)).stdout  # nothing left to bring

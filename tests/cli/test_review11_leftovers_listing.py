"""Review 11's leftover: `agentstore sessions` exited 0 when the listing passed over a
session file it could not read (the file backend skips it so that one bad file does not
hide the others; the CLI saw only the log line). The listing still shows what it read,
names each session it passed over on stderr, and exits 1, as copy and verify do for a
partial failure.

A real data directory and the CLI as a real process; the damage is a truncated session
file (a session in the index) and a directory where a session file belongs (one the index
does not know, found by the scan). chmod 000 would not do: the tests run as root.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

import agentstore
from tests.cli_process import agentstore_cli


def _three(data_dir: Path) -> None:
    async def main() -> None:
        async with agentstore.open(data_dir) as store:
            for sid in ("s-old", "s-mid", "s-new"):
                await store.create_session(session_id=sid, name=sid, labels={"env": "prod"})

    asyncio.run(main())


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl"])
def test_a_truncated_session_file_is_named_and_the_listing_exits_1(
    tmp_path: Path, fmt: str
) -> None:
    _three(tmp_path)
    bad = tmp_path / "sessions" / "s-mid.json"
    bad.write_bytes(bad.read_bytes()[:17])  # cut mid-write by a crash or a full disk
    out = agentstore_cli("--data-dir", tmp_path, "sessions", "--format", fmt)
    assert out.returncode == 1, out
    # What could be read is listed.
    if fmt == "table":
        assert "s-old" in out.stdout and "s-new" in out.stdout
    elif fmt == "json":
        assert [s["id"] for s in orjson.loads(out.stdout)] == ["s-new", "s-old"]
    else:
        assert [orjson.loads(line)["id"] for line in out.stdout.splitlines()] == [
            "s-new",
            "s-old",
        ]
    assert "s-mid" not in out.stdout
    lines = out.stderr.splitlines()
    assert "Traceback" not in out.stderr
    assert [line for line in lines if "s-mid" in line] == [lines[0]]
    # Named relative to the data directory: the same line through a server (which tells
    # its clients nothing of its own paths; tests/test_review12_listing_skipped.py).
    assert lines[0].startswith("skipped: s-mid: sessions/s-mid.json is not a valid session")
    assert str(bad) not in lines[0]
    assert lines[-1].startswith("error: 1 session could not be read and is not listed")
    assert len(lines) == 2


def test_a_directory_where_a_session_file_belongs_is_named_with_the_others(
    tmp_path: Path,
) -> None:
    _three(tmp_path)
    (tmp_path / "sessions" / "s-dir.json").mkdir()  # not in the index: the scan finds it
    bad = tmp_path / "sessions" / "s-old.json"
    bad.write_bytes(b"")
    out = agentstore_cli("--data-dir", tmp_path, "sessions", "--label", "env=prod")
    assert out.returncode == 1, out
    assert "s-new" in out.stdout and "s-mid" in out.stdout
    assert "Traceback" not in out.stderr
    skipped = [line for line in out.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2
    assert any("s-dir.json" in line for line in skipped)
    assert any(f"sessions/{bad.name}" in line for line in skipped)
    assert "error: 2 sessions could not be read and are not listed" in out.stderr


def test_a_listing_that_read_everything_exits_0(tmp_path: Path) -> None:
    _three(tmp_path)
    out = agentstore_cli("--data-dir", tmp_path, "sessions", "--format", "json")
    assert out.returncode == 0, out
    assert out.stderr == ""
    assert len(orjson.loads(out.stdout)) == 3


def test_latest_is_refused_when_the_newest_session_may_be_the_one_unreadable(
    tmp_path: Path,
) -> None:
    # 'latest' is the listing's first session: with the newest one passed over, it named
    # the one before, and `delete latest --yes` deleted that one.
    _three(tmp_path)
    (tmp_path / "sessions" / "s-new.json").write_bytes(b'{"id": "s-new", "crea')
    out = agentstore_cli("--data-dir", tmp_path, "delete", "latest", "--yes")
    assert out.returncode == 1, out
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: cannot tell which session is the latest")
    assert "s-new.json" in out.stderr
    assert {p.name for p in (tmp_path / "sessions").iterdir()} >= {"s-old.json", "s-mid.json"}
    # By its id, the session is found as ever.
    assert agentstore_cli("--data-dir", tmp_path, "delete", "s-mid", "--yes").returncode == 0
    assert not (tmp_path / "sessions" / "s-mid.json").exists()

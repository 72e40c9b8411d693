"""Review 13: naming a session by its name reads each session once, not once a page.

`agentstore stats NAME` (any command's SESSION argument) looks the name up in a scan of the
listing. The scan paged by offset: each page of 500 read every session before it again, so
naming the oldest of 5,000 sessions read about 27,500 of them (21 s on a data directory,
20 s through `agentstore serve`; 2.4 s and 1.1 s by cursor), and a session created during
the scan shifted the pages (one named twice: "2 sessions are named ..."). Now it pages by
cursor.

Real files (sessions as the Go original writes them without events, so that 5,000 take a
second to make) and the CLI as a real process. The bound is loose: 4 times the time it
takes now, half the time it took.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from tests.cli_process import agentstore_cli

_COUNT = 5000


def _seed(data_dir: Path) -> None:
    sessions = data_dir / "sessions"
    sessions.mkdir(parents=True)
    for i in range(_COUNT):
        sid = f"s-{i:05d}"
        created = f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        doc = {"id": sid, "created_at": created, "updated_at": created, "event_count": 0}
        if i == 3:
            doc["name"] = "the-oldest"
        (sessions / f"{sid}.json").write_bytes(orjson.dumps(doc))


def test_the_oldest_of_5000_sessions_is_named_in_one_scan(tmp_path: Path) -> None:
    _seed(tmp_path / "data")
    began = time.monotonic()
    done = agentstore_cli(
        "--data-dir", tmp_path / "data", "stats", "the-oldest", "--format", "json"
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["session"]["id"] == "s-00003"
    assert took < 10, f"naming the session took {took:.1f} s"

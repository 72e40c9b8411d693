"""Review 13: `agentstore copy grpc://... DST` names a session SRC's server cannot read.

A copy must not lose a session silently: the listing leaves out a session file it cannot
read, so the copy also asked `find_session_ids("")` for every id. Through a server that
answer is capped (the Storage service's FindSessionIds gives at most 1000 ids, sorted), so
with more than 1000 sessions an unreadable one sorting after the first 1000 was neither
listed nor found: the copy said "copied"/"skipped" for the others and exited 0, the damaged
session missing from DST and never named. The listing's pages name it
(`SessionPage.skipped`), and the copy takes its ids from there too.

Real files (written as the Go original writes a session without events, so that 1001
sessions take a second to make), a real `agentstore serve` with its gRPC door, the CLI as
a real process. DST already holds the readable sessions, so the copy only looks at them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from tests.cli_process import agentstore_cli
from tests.server.http_helpers import serving_grpc

_COUNT = 1001  # past the 1000 ids FindSessionIds answers with
_BROKEN = "zz-broken"  # sorts after every s-NNNNN


def _seed(data_dir: Path) -> None:
    sessions = data_dir / "sessions"
    sessions.mkdir(parents=True)
    for i in range(_COUNT):
        sid = f"s-{i:05d}"
        created = f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        doc = {"id": sid, "created_at": created, "updated_at": created, "event_count": 0}
        (sessions / f"{sid}.json").write_bytes(orjson.dumps(doc))


def test_a_copy_from_a_server_names_an_unreadable_session_past_the_first_thousand(
    tmp_path: Path,
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    shutil.copytree(src, dst)  # every readable session is there already
    (src / "sessions" / f"{_BROKEN}.json").write_bytes(b'{"id": "zz-bro')  # cut short
    with serving_grpc(src) as where:
        done = agentstore_cli("copy", f"grpc://{where}", dst)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"session {_BROKEN} not copied" in done.stderr
    assert f"1 of {_COUNT + 1} sessions was not copied" in done.stderr
    assert f"skipped {_COUNT} already there" in done.stdout


def test_a_local_copy_names_it_once_not_with_the_listing_s_warnings_too(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _seed(src)
    shutil.copytree(src, dst)
    (src / "sessions" / f"{_BROKEN}.json").write_bytes(b'{"id": "zz-bro')
    done = agentstore_cli("copy", src, dst)
    assert done.returncode == 1, done.stdout + done.stderr
    # The copy's own line says what is wrong; the listing's log lines (one a page read)
    # said it again, three times over.
    assert done.stderr.count(f"{_BROKEN}.json") == 1, done.stderr
    assert "listing sessions" not in done.stderr

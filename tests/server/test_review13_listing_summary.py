"""Review 13: one session whose events cannot be read no longer fails the web UI's list.

`GET /v1/sessions?summary=1` (the web UI's sessions page) folds each listed session's
events into its summary. A session whose session file reads but whose log is damaged
before its last line (a line changed after it was written, found by its checksum) failed
the whole answer: `500 corrupt_log`, and the UI listed no session at all, the one thing
`skipped` exists to prevent. Now that session is left out and named in `skipped`, with
the file named relative to the data directory (as the listing names the others), and the
others are listed with their summaries. A session deleted between the listing and its
summary is left out too, where it failed the answer with `404 session_not_found` (a race
this test does not stage).

A real data directory damaged on disk, a real `agentstore serve` over loopback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import agentstore
from tests.server.http_helpers import running


async def _seed(data_dir: Path) -> None:
    async with agentstore.open(data_dir, snapshot_interval=0) as store:
        for sid in ("s-old", "s-bad", "s-new"):
            await store.create_session(session_id=sid)
            events = [agentstore.new_event("custom", {"i": i}) for i in range(5)]
            await store.append_many(sid, events)
    log = data_dir / "events" / "s-bad.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"i":1', b'"i":7')  # changed after it was written
    log.write_bytes(b"".join(lines))


def test_a_damaged_log_is_named_not_a_failed_list(tmp_path: Path) -> None:
    data_dir = (tmp_path / "data").resolve()
    asyncio.run(_seed(data_dir))
    with running(data_dir) as srv, srv.client() as client:
        response = client.get("/v1/sessions", params={"summary": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["id"] for s in body["sessions"]] == ["s-new", "s-old"]
    assert set(body["summaries"]) == {"s-new", "s-old"}
    assert body["summaries"]["s-new"]["events"] == 5
    [skipped] = body["skipped"]
    assert skipped["session_id"] == "s-bad"
    assert "events/s-bad.jsonl:2" in skipped["reason"]
    assert str(tmp_path) not in skipped["reason"]  # no path of the server's machine

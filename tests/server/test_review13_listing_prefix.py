"""Review 13: `GET /v1/sessions?prefix=` names only the unreadable sessions under that prefix.

A listing names the sessions it passed over as unreadable (`skipped`). With an id prefix
the door still named every unreadable session the store's pages passed over, whatever its
id: a search for `s-new` was told `s-mid` could not be read (the web UI shows a notice of
it). The id of a skipped session is known, so the prefix applies to it as to the others.
A text query (`q`) may match an unreadable session's name, which cannot be read: those
stay named.

A real data directory with a session file cut short, a real `agentstore serve`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import agentstore
from tests.server.http_helpers import running


async def _seed(data_dir: Path) -> None:
    async with agentstore.open(data_dir) as store:
        for sid in ("s-old", "s-mid", "s-new"):
            await store.create_session(session_id=sid, name=sid)
    bad = data_dir / "sessions" / "s-mid.json"
    bad.write_bytes(bad.read_bytes()[:17])  # cut short by a crash or a full disk


def test_a_prefix_names_only_the_skipped_sessions_under_it(tmp_path: Path) -> None:
    asyncio.run(_seed(tmp_path / "data"))
    with running(tmp_path / "data") as srv, srv.client() as client:
        other = client.get("/v1/sessions", params={"prefix": "s-new"}).json()
        under = client.get("/v1/sessions", params={"prefix": "s-m"}).json()
        text = client.get("/v1/sessions", params={"q": "s-new"}).json()
    assert [s["id"] for s in other["sessions"]] == ["s-new"]
    assert other["skipped"] == []
    assert under["sessions"] == []
    assert [s["session_id"] for s in under["skipped"]] == ["s-mid"]
    # Its name cannot be read, so a text query cannot rule it out.
    assert [s["session_id"] for s in text["skipped"]] == ["s-mid"]

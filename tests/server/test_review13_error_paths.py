"""Review 13: an error answer names a damaged file relative to the data directory.

The doors leave the `path` field out of an error's details ("a server does not tell
clients its file system layout"), but the message still began with it: reading a session
whose log has a changed line answered `500 corrupt_log` with
`/srv/agents/data/events/ID.jsonl:2: checksum mismatch ...`, and so through gRPC (the
remote backend's error). Now the message names `events/ID.jsonl:2`, as a listing's
`skipped` names files.

A real data directory damaged on disk, a real `agentstore serve` with both doors.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import agentstore
from agentstore.errors import CorruptLogError
from tests.server.http_helpers import problem, running, serving_grpc


async def _seed(data_dir: Path) -> None:
    async with agentstore.open(data_dir, snapshot_interval=0) as store:
        await store.create_session(session_id="s-bad")
        await store.append_many(
            "s-bad", [agentstore.new_event("custom", {"i": i}) for i in range(5)]
        )
    log = data_dir / "events" / "s-bad.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"i":1', b'"i":7')  # changed after it was written
    log.write_bytes(b"".join(lines))


def test_http_names_the_file_relative_to_the_data_directory(tmp_path: Path) -> None:
    data_dir = (tmp_path / "data").resolve()
    asyncio.run(_seed(data_dir))
    with running(data_dir) as srv, srv.client() as client:
        response = client.get("/v1/sessions/s-bad/events")
    assert response.status_code == 500, response.text
    body = problem(response)
    assert body["code"] == "corrupt_log"
    assert body["detail"].startswith("events/s-bad.jsonl:2: checksum mismatch"), body
    assert str(tmp_path) not in response.text


async def test_grpc_names_it_relative_too(tmp_path: Path) -> None:
    data_dir = (tmp_path / "data").resolve()
    await _seed(data_dir)
    with serving_grpc(data_dir) as where:
        async with agentstore.open(f"grpc://{where}") as store:
            with pytest.raises(CorruptLogError) as caught:
                await store.get_events("s-bad")
    assert "events/s-bad.jsonl:2: checksum mismatch" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)

"""Review 13: a session of large events reads through the gRPC door.

A read's messages held a page of up to 500 events, and the door sends messages of at most
twice `--max-body-bytes` (8 MiB by default), while one event may be as large as a request
body (4 MiB). Three events of 3.5 MB, each appended on its own within every limit, made a
session no client could read through gRPC: `agentstore --store grpc://... replay`, `stats`
and `agentstore copy grpc://...` failed with "Sent message larger than max (10500303 vs.
8389632)", and so did `ReadEvents` of the AgentStore service. Now a page is sent as several
messages where one would pass the limit.

A real data directory, a real `agentstore serve`, the CLI as a process, and the AgentStore
service through the generated stub.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import orjson

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from tests.cli_process import agentstore_cli
from tests.server.http_helpers import serving_grpc

_BLOB = "y" * 3_500_000


async def _seed(data_dir: Path) -> None:
    async with agentstore.open(data_dir) as store:
        await store.create_session(session_id="large")
        for i in range(3):
            await store.append("large", agentstore.new_event("custom", {"i": i, "blob": _BLOB}))


async def _read_events(target: str) -> list[int]:
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as channel:
        stub = pb_grpc.AgentStoreStub(channel)
        seqs: list[int] = []
        async for batch in stub.ReadEvents(pb.ReadEventsRequest(session_id="large")):
            seqs += [e.sequence_number for e in batch.events]
        return seqs


def test_a_session_of_large_events_replays_and_copies_through_grpc(tmp_path: Path) -> None:
    asyncio.run(_seed(tmp_path / "data"))
    with serving_grpc(tmp_path / "data") as where:
        replayed = agentstore_cli(
            "--store", f"grpc://{where}", "replay", "large", "--format", "jsonl"
        )
        copied = agentstore_cli("copy", f"grpc://{where}", tmp_path / "copy")
        read = asyncio.run(_read_events(where))
    assert replayed.returncode == 0, replayed.stderr
    rows = [orjson.loads(line) for line in replayed.stdout.splitlines()]
    assert [r["payload"]["i"] for r in rows] == [0, 1, 2]
    assert all(r["payload"]["blob"] == _BLOB for r in rows)
    assert copied.returncode == 0, copied.stderr
    name = "events/large.jsonl"
    assert (tmp_path / "copy" / name).read_bytes() == (tmp_path / "data" / name).read_bytes()
    assert read == [1, 2, 3]

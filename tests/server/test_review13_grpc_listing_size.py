"""Review 13: a session listing through the gRPC door fits its messages.

A page of `ListSessions` was one message of every session asked for (up to 1000), and the
door sends messages of at most twice `--max-body-bytes` (8 MiB by default). Labels have no
size limit (the HTTP door takes a 4 MiB body), so ten sessions labelled with 1 MB each
broke every listing through gRPC: `agentstore --store grpc://... sessions`, a `latest`
argument and `agentstore copy grpc://...` all failed with "Sent message larger than max
(10000867 vs. 8389632)", however few sessions the caller wanted shown. Now a page ends
before the session that would not fit, its `next_cursor` at the last one sent (the client
reads on from there); only one session past the limit alone cannot be sent.

A real data directory, a real `agentstore serve` (both doors), the CLI as a process and
the AgentStore service through the generated stub.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from tests.cli_process import agentstore_cli
from tests.server.http_helpers import serving_grpc

_BIG = 12


async def _seed(data_dir: Path) -> None:
    async with agentstore.open(data_dir) as store:
        for i in range(_BIG):
            await store.create_session(session_id=f"big-{i:02d}", labels={"blob": "x" * 1_000_000})
        await store.create_session(session_id="small")


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over the seeded sessions, for both tests: they only read them (seeding
    12 MB of labels and a server start were most of each test's time)."""
    data = tmp_path_factory.mktemp("labels") / "data"
    asyncio.run(_seed(data))
    with serving_grpc(data) as target:
        yield target


def test_the_cli_lists_and_copies_sessions_whose_labels_fill_a_message(
    where: str, tmp_path: Path
) -> None:
    listed = agentstore_cli("--store", f"grpc://{where}", "sessions", "--format", "json")
    latest = agentstore_cli("--store", f"grpc://{where}", "stats", "latest", "--format", "json")
    copied = agentstore_cli("copy", f"grpc://{where}", tmp_path / "copy")
    assert listed.returncode == 0, listed.stderr
    assert len(orjson.loads(listed.stdout)) == _BIG + 1
    assert latest.returncode == 0, latest.stderr
    assert orjson.loads(latest.stdout)["session"]["id"] == "small"
    assert copied.returncode == 0, copied.stderr
    assert f"copied {_BIG + 1} sessions" in copied.stdout


async def _agentstore_pages(target: str) -> list[list[str]]:
    pages: list[list[str]] = []
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    ) as channel:
        stub = pb_grpc.AgentStoreStub(channel)
        cursor = ""
        while True:
            reply = await stub.ListSessions(pb.ListSessionsRequest(limit=1000, cursor=cursor))
            pages.append([s.id for s in reply.sessions])
            cursor = reply.next_cursor
            if not cursor:
                return pages


def test_the_agentstore_service_pages_them_too(where: str) -> None:
    pages = asyncio.run(_agentstore_pages(where))
    ids = [sid for page in pages for sid in page]
    assert sorted(ids) == sorted([f"big-{i:02d}" for i in range(_BIG)] + ["small"])
    assert len(ids) == len(set(ids))  # none twice
    assert len(pages) >= 2

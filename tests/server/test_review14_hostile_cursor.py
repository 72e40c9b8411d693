"""Review 14: a server whose listing never ends does not hang the CLI.

A listing is read page after page until a page has no `next_cursor`. A server that sends
the same cursor again (a bug, or a hostile server), with the same sessions, made
`agentstore copy`, `agentstore sessions` and a session named by its name read pages
forever (copy: holding more ids on every page). Now a cursor that comes back stops the
listing with one line: the store's listing does not advance.

The remote backend (`RemoteBackend.list_sessions`, which asks the server again until its
page is full) looped for ever on a server answering empty pages with a cursor; it now
stops with `StorageError` once a cursor comes back.

A real gRPC server in this process (the Storage service over a memory store, its listing
answering a cursor that never ends), the CLI as real processes against it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_storage import StorageServicer
from agentstore.server.service import AgentStoreService, Limits

_AGAIN = "2000-01-01T00:00:00+00:00|again"


class _RoundAndRound(StorageServicer):
    """Answers the first page whatever the cursor, and a cursor to read on."""

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> Any:
        request.cursor = ""
        reply = await super().ListSessions(request, context)
        reply.next_cursor = _AGAIN
        return reply


class _Empty(StorageServicer):
    """Answers no session, and a cursor to read on."""

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> Any:
        return pb.ListSessionsResponse(next_cursor=_AGAIN)


async def _run(
    servicer: type[StorageServicer], args: list[str], dst: Path, count: int = 20
) -> tuple[int, str]:
    """Run the CLI with `args` ({url}, {dst} filled in) against `servicer` over a memory
    store of `count` sessions; return its exit code and what it printed."""
    store = await agentstore.open(in_memory=True, pricing=False)
    for i in range(count):
        await store.create_session(session_id=f"s-{i:04d}", name=f"name {i}")
    server = grpc.aio.server()
    pb_grpc.add_StorageServicer_to_server(servicer(AgentStoreService(store, Limits())), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        url = f"grpc://127.0.0.1:{port}"
        command = [a.format(url=url, dst=dst) for a in args]
        with anyio.fail_after(60):
            done = await anyio.run_process(
                [sys.executable, "-m", "agentstore_cli", *command], check=False
            )
    finally:
        await server.stop(grace=None)
        await store.close()
    return done.returncode, done.stdout.decode() + done.stderr.decode()


_COMMANDS = [
    ["copy", "{url}", "{dst}"],
    ["--store", "{url}", "sessions", "--limit", "5000"],
    ["--store", "{url}", "replay", "no such name"],
]


@pytest.mark.parametrize("args", _COMMANDS)
async def test_a_listing_whose_cursor_comes_back_stops_with_one_line(
    tmp_path: Path, args: list[str]
) -> None:
    code, out = await _run(_RoundAndRound, args, tmp_path / "dst")
    assert code == 1, out
    assert "Traceback" not in out
    assert "listing does not advance" in out, out


async def test_a_server_answering_empty_pages_for_ever_does_not_hang_a_listing(
    tmp_path: Path,
) -> None:
    code, out = await _run(_Empty, _COMMANDS[1], tmp_path / "dst")
    assert code == 1, out
    assert "Traceback" not in out
    assert "listing does not advance" in out, out

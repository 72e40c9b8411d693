"""Review 13: what a server says of the sessions it passed over reaches a terminal as text.

A listing's `skipped` comes from the server as it sends it: an id and a reason the client
never checks. `agentstore sessions` printed them escaped; `agentstore copy`, which now
takes the ids to copy from `skipped` too, named a session it could not copy with its id
raw ("session <id> not copied"): an id holding an OSC sequence retitled the terminal.
(`find_session_ids`' ids reached the same line the same way.)

A real gRPC server in this process (the Storage service over a memory store, its listing
answering one hostile skipped session), the CLI as real processes against it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import grpc

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_storage import StorageServicer
from agentstore.server.service import AgentStoreService, Limits

HOSTILE_ID = "\x1b]0;pwned\x07\x1b[2Jx"
HOSTILE_REASON = "\x1b[31m[bold]gone[/bold]\u202e"
RAW = ["\x1b]", "\x1b[2J", "\x1b[31m", "\u202e"]


class _Hostile(StorageServicer):
    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> Any:
        reply = await super().ListSessions(request, context)
        reply.skipped.append(pb.SkippedSession(session_id=HOSTILE_ID, reason=HOSTILE_REASON))
        return reply


async def _cli(*args: str) -> tuple[int, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "agentstore_cli", *args], check=False, env=None
    )
    return done.returncode, done.stdout.decode() + done.stderr.decode()


async def test_a_hostile_skipped_session_is_printed_escaped(tmp_path: Path) -> None:
    store = await agentstore.open(in_memory=True, pricing=False)
    await store.create_session(session_id="s-ok")
    server = grpc.aio.server()
    pb_grpc.add_StorageServicer_to_server(_Hostile(AgentStoreService(store, Limits())), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        url = f"grpc://127.0.0.1:{port}"
        code, copied = await _cli("copy", url, str(tmp_path / "dst"))
        listed_code, listed = await _cli("--store", url, "sessions")
    finally:
        await server.stop(grace=None)
        await store.close()
    assert code == 1, copied
    assert listed_code == 1, listed
    for out in (copied, listed):
        for raw in RAW:
            assert raw not in out, f"raw {raw!r} reached the terminal: {out!r}"
    assert "session \\x1b]0;pwned\\x07\\x1b[2Jx not copied" in copied
    assert "[bold]gone[/bold]" in listed  # markup shown as text

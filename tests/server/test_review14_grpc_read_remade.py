"""Review 14: a Storage.Read stream never joins two sessions made under one id.

The Storage service (what `--store grpc://...` reads through: `RemoteBackend.read`, one
call for one read) sends a long read as backend reads of 500 events, each a read of its
own. A session deleted and made again under its id between two of them gave the first
page of the old session and the rest of the new one, as one read of one session: a remote
replay or fold mixed two histories (the AgentStore service and the HTTP door check that
every page is of the session the read began with: `paging.more_pages`). Now the Storage
service checks it too: the read fails with not_found, as theirs do.

A real gRPC door over a real data directory. The events are large (100 KB, a page 50 MB),
so the server is still sending the first page, held by flow control, when the client has
taken its first message and remade the session.
"""

from __future__ import annotations

from pathlib import Path

import grpc

import agentstore
from agentstore import new_event
from agentstore.server import agentstore_pb2 as pb
from tests.server.grpc_helpers import running_door

_BIG = "x" * 100_000


async def _fill(store: agentstore.Store, tag: str) -> None:
    await store.create_session(session_id="s")
    for _ in range(4):
        await store.append_many(
            "s", [new_event("custom", {"tag": tag, "pad": _BIG}) for _k in range(250)]
        )


async def test_a_session_remade_during_a_storage_read_fails_the_read(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        await _fill(store, "old")
        opts = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        async with running_door(store, channel_options=opts) as door:
            call = door.storage.Read(pb.ReadEventsRequest(session_id="s"))
            first = await call.read()
            assert first is not grpc.aio.EOF and first.events
            await store.delete_session("s")
            await _fill(store, "new")
            tags: set[bytes] = set()
            seqs = [e.sequence_number for e in first.events]
            code = None
            try:
                while (msg := await call.read()) is not grpc.aio.EOF:
                    seqs += [e.sequence_number for e in msg.events]
                    tags.update(b'"new"' in e.payload_json for e in msg.events)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
    # Either the old session's events only, or the read refused: never the new one's.
    assert True not in tags, f"the read joined the new session's events (to {seqs[-1]})"
    assert code == grpc.StatusCode.NOT_FOUND
    assert seqs == list(range(1, len(seqs) + 1))

"""Review 15: a Storage.Read never joins a session re-imported under its id with its time.

146467f pins a read of several pages to its session: once the second page is due, the
session is looked up and the first page's last event read again; after each later page
the session's creation time is compared. A session deleted and imported again under
its id keeps the creation time of its export (`Store.import_session` keeps ids, numbers
and times): one re-imported after the pin, from an export whose later events differ,
passed the comparison, and the read went on with the other history.

A real gRPC door over a real data directory; 1,001 events of 100 KB (three pages), the
client reading slowly so that the server is held by flow control inside the second page
when the session is remade (on the previous commit: 1,000 old events, then the new one's
1,001st, as one read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

import agentstore
from agentstore import new_event
from agentstore.server import agentstore_pb2 as pb
from tests.server.grpc_helpers import running_door

_PAD = "x" * 100_000


async def _read_while_reimported(tmp_path: Path, service: str) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        session = await store.create_session(session_id="s")
        for count in (500, 500, 1):
            await store.append_many(
                "s", [new_event("custom", {"tag": "old", "pad": _PAD}) for _ in range(count)]
            )
        other = [
            new_event("custom", {"tag": "new"}).model_copy(
                update={"sequence_number": i, "session_id": "s", "timestamp": session.created_at}
            )
            for i in range(1, 1002)
        ]
        opts = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        async with running_door(store, channel_options=opts) as door:
            stub: Any = door.storage if service == "Storage" else door.api
            rpc = stub.Read if service == "Storage" else stub.ReadEvents
            call = rpc(pb.ReadEventsRequest(session_id="s"))
            seqs: list[int] = []
            tags: set[bool] = set()
            code = None
            remade = False
            try:
                while (msg := await call.read()) is not grpc.aio.EOF:
                    seqs += [e.sequence_number for e in msg.events]
                    tags.update(b'"new"' in e.payload_json for e in msg.events)
                    if not remade and seqs[-1] > 500:  # the second page: the read is pinned
                        remade = True
                        await store.delete_session("s")
                        await store.import_session(session, other)
                        assert (await store.get_session("s")).created_at == session.created_at
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
    assert remade
    assert seqs == list(range(1, len(seqs) + 1))
    # Either the old session's events only, or the read refused: never the new one's.
    assert True not in tags, f"the read joined the re-imported session's events ({seqs[-1]})"
    assert code == grpc.StatusCode.NOT_FOUND


async def test_a_session_reimported_with_its_time_during_a_storage_read_fails_it(
    tmp_path: Path,
) -> None:
    await _read_while_reimported(tmp_path, "Storage")


async def test_a_session_reimported_with_its_time_during_an_agentstore_read_fails_it(
    tmp_path: Path,
) -> None:
    await _read_while_reimported(tmp_path, "AgentStore")

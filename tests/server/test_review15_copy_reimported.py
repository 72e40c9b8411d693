"""Review 15: `agentstore copy` never copies two histories as one session.

The copy reads a session a page (1,000 events) at a time and, after each page, checks
that the session is still the one it began with (`check_same_session`: the same creation
time). An import keeps the creation time of its export, so a session deleted and
imported again under its id between two pages, from an export whose events differ,
passed: DST got SRC's old events 1..1000 and the new session's 1001..2500 as one
session. The page before's last event is now read again too, and such a copy stops.

SRC is a real gRPC server in this process (the Storage service over a memory store)
that remakes the session just before it serves the copy's second page; the copy is a
real `agentstore copy` process into a data directory.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import grpc

import agentstore
from agentstore import new_event
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_storage import StorageServicer
from agentstore.server.service import AgentStoreService, Limits


def _other_history(count: int) -> list[agentstore.Event]:
    """Another history for session "s", dated after every old event (it imports whole)."""
    later = datetime.now(UTC) + timedelta(hours=1)
    return [
        new_event("custom", {"tag": "new"}).model_copy(
            update={"sequence_number": i, "session_id": "s", "timestamp": later}
        )
        for i in range(1, count + 1)
    ]


@contextlib.asynccontextmanager
async def _remaking_server(
    store: agentstore.Store, session: agentstore.Session
) -> AsyncIterator[tuple[int, list[bool]]]:
    """The Storage service over `store`, which deletes session "s" and imports another
    history under its id and time just before it serves a read from event 1001; yields
    its port and whether that happened. Closes `store` at the end."""
    other = _other_history(2500)
    remade: list[bool] = []

    class Remaking(StorageServicer):
        async def Read(self, request: pb.ReadEventsRequest, context: Any) -> None:
            if request.session_id == "s" and request.from_seq == 1001 and not remade:
                remade.append(True)  # deleted and imported again, its time kept
                await store.delete_session("s")
                await store.import_session(session, other)
            await super().Read(request, context)

    server = grpc.aio.server()
    pb_grpc.add_StorageServicer_to_server(Remaking(AgentStoreService(store, Limits())), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, remade
    finally:
        await server.stop(grace=None)
        await store.close()


async def _old_session(events: int) -> tuple[agentstore.Store, agentstore.Session]:
    store = await agentstore.open(in_memory=True, pricing=False)
    session = await store.create_session(session_id="s")
    for _ in range(events // 500):
        await store.append_many("s", [new_event("custom", {"tag": "old"}) for _ in range(500)])
    return store, session


async def _copy(port: int, dst: Path) -> str:
    """Run `agentstore copy` from the server into `dst`; return what it printed."""
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "agentstore_cli", "copy", f"grpc://127.0.0.1:{port}", dst],
            check=False,
        )
    return done.stdout.decode() + done.stderr.decode()


async def test_a_session_reimported_between_two_pages_of_a_copy_is_not_copied_mixed(
    tmp_path: Path,
) -> None:
    store, session = await _old_session(2500)
    dst = tmp_path / "dst"
    async with _remaking_server(store, session) as (port, remade):
        out = await _copy(port, dst)
    assert remade, out
    assert "Traceback" not in out
    async with agentstore.open(dst) as copied:
        try:
            tags = {e.payload["tag"] for e in await copied.get_events("s")}
        except agentstore.SessionNotFoundError:
            tags = set()
    assert len(tags) <= 1, f"DST's session joins two histories: {out}"


async def test_a_fork_across_a_reimport_between_two_pages_is_refused() -> None:
    store, session = await _old_session(2500)
    async with (
        _remaking_server(store, session) as (port, remade),
        agentstore.open(f"grpc://127.0.0.1:{port}", pricing=False) as remote,
    ):
        try:
            fork = await remote.fork("s", at_seq=2500)
        except agentstore.SessionNotFoundError:
            tags: set[str] = set()  # refused: as a remade session should be
        else:
            tags = {e.payload["tag"] for e in await remote.get_events(fork.id)}
    assert remade
    assert len(tags) <= 1, "the fork joins two histories"


async def test_a_session_reimported_before_its_extension_is_not_appended_mixed(
    tmp_path: Path,
) -> None:
    # DST holds events 1..1000 (an earlier copy); SRC grew to 2,500 and is remade (its
    # time kept) after the copy compared the first 1,000 ids and before it reads on: on
    # the previous commit DST got the other history's 1001..2500 after its own 1..1000.
    store, session = await _old_session(1000)
    dst = tmp_path / "dst"
    async with agentstore.open(dst) as copied:
        await copied.import_session(session, await store.get_events("s"))
    for _ in range(3):
        await store.append_many("s", [new_event("custom", {"tag": "old"}) for _ in range(500)])
    async with _remaking_server(store, session) as (port, remade):
        out = await _copy(port, dst)
    assert remade, out
    assert "Traceback" not in out
    async with agentstore.open(dst) as copied:
        events = await copied.get_events("s")
    # Left at the 1,000 events it had (the new history is not theirs), never extended
    # with the other history's.
    assert {e.payload["tag"] for e in events} == {"old"}, out

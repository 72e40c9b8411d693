"""Review 11: a session imported (or copied, or forked) into a store behind a server. The
remote backend sent the whole session in one CreateSession message: a session over the
server's message limit (4 MiB by default: about 15,000 events of 200 bytes) could not be
copied to `grpc://` at all ("Received message larger than max"), and was held whole in the
client's memory. Now its pages go over one call and the server writes them as they come,
whole or not at all (these failed before the fix)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import grpc
import pytest

import agentstore
from agentstore import Event, InvalidInputError, SessionNotFoundError, new_event
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_storage import StorageServicer
from agentstore.server.service import AgentStoreService, Limits

from .grpc_helpers import running_door

N = 12_000
LIMITS = Limits(max_body_bytes=1024 * 1024)  # 1 MiB: the session is three times that


async def _events(store: agentstore.Store) -> list[Event]:
    sid = (await store.create_session()).id
    for k in range(N // 1000):
        page = [{"k": k, "i": i, "pad": "p" * 200} for i in range(1000)]
        await store.append_many(sid, [new_event("custom", p) for p in page])
    return [e.model_copy(update={"session_id": ""}) for e in await store.get_events(sid)]


SESSION = {"id": "imported", "created_at": datetime(2026, 1, 2, tzinfo=UTC)}


async def test_a_session_over_the_message_limit_is_imported_whole(tmp_path: Path) -> None:
    async with (
        await agentstore.open(tmp_path / "served", pricing=False) as served,
        running_door(served, limits=LIMITS) as door,
        agentstore.open(f"grpc://{door.target}") as remote,
    ):
        events = await _events(remote)
        imported = await remote.import_session(SESSION, iter(events))
        assert imported.event_count == N
        assert await served.get_events("imported") == [
            e.model_copy(update={"session_id": "imported"}) for e in events
        ]
        fork = await remote.fork("imported", at_seq=N - 1)
        assert fork.event_count == N - 1


async def test_a_failed_import_leaves_nothing_behind_and_raises_its_own_error(
    tmp_path: Path,
) -> None:
    async with (
        await agentstore.open(tmp_path / "served", pricing=False) as served,
        running_door(served, limits=LIMITS) as door,
        agentstore.open(f"grpc://{door.target}") as remote,
    ):
        events = await _events(remote)

        async def failing() -> AsyncIterator[Event]:
            for event in events:
                if event.sequence_number == N - 10:  # pages went to the server already
                    raise ConnectionResetError("the bucket hung up")
                yield event

        with pytest.raises(ConnectionResetError, match="the bucket hung up"):
            await remote.import_session(SESSION, failing())
        bad = [*events[:5000], events[5000].model_copy(update={"sequence_number": 9})]
        with pytest.raises(InvalidInputError, match="event 5001"):
            await remote.import_session(SESSION, bad)
        for store in (remote, served):
            with pytest.raises(SessionNotFoundError):
                await store.get_session("imported")


async def test_agentstore_copy_into_a_server(tmp_path: Path) -> None:
    src = tmp_path / "src"
    async with agentstore.open(src) as store:
        await _events(store)
    async with (
        await agentstore.open(tmp_path / "served", pricing=False) as served,
        running_door(served, limits=LIMITS) as door,
    ):
        done = await anyio.run_process(
            [sys.executable, "-m", "agentstore_cli", "copy", str(src), f"grpc://{door.target}"],
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        sid = (await served.list_sessions())[0].id
        assert (await served.get_session(sid)).event_count == N
    logs = [tmp_path / d / "events" / f"{sid}.jsonl" for d in ("src", "served")]
    assert logs[0].read_bytes() == logs[1].read_bytes()


class _Older(StorageServicer):
    """A server from before CreateSessionFromPages (the generated base answers it
    UNIMPLEMENTED)."""

    CreateSessionFromPages = pb_grpc.StorageServicer.CreateSessionFromPages  # type: ignore[assignment]


async def test_a_server_older_than_the_call_still_takes_an_import() -> None:
    store = await agentstore.open(in_memory=True, pricing=False)
    server = grpc.aio.server()
    pb_grpc.add_StorageServicer_to_server(_Older(AgentStoreService(store, Limits())), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{port}") as remote:
            events = [new_event("custom", {"i": i}) for i in range(3)]
            sid = (await remote.create_session()).id
            await remote.append_many(sid, events)
            stored = await remote.get_events(sid)
            exported = [e.model_copy(update={"session_id": ""}) for e in stored]
            # As before the call: the session in one CreateSession.
            assert (await remote.import_session(SESSION, exported)).event_count == 3
            assert (await store.get_session("imported")).event_count == 3
    finally:
        await server.stop(grace=None)
        await store.close()


async def test_a_wrong_token_is_one_clear_refusal() -> None:
    async with running_door(token="right") as door:
        remote = agentstore.open(f"grpc://{door.target}", token="wrong")
        async with remote:
            with pytest.raises(agentstore.AgentStoreError, match="token"):
                await remote.import_session(SESSION, [])

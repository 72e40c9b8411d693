"""`agentstore.open("grpc://...")`: a Store whose storage is a live `agentstore serve`.

What the remote backend adds to the conformance contract (test_remote_contract.py): the
URL and token, TLS, the caller's reducer running on the client, errors rebuilt as the
same classes, a server that goes away and comes back, and a follower that waits on a
server stream instead of polling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import agentstore
from agentstore import State, StorageUnavailableError
from agentstore.backends.remote import RemoteBackend
from agentstore.server.errors import UnauthenticatedError
from agentstore.server.grpc_door import GrpcServerHandle, start_grpc_server
from agentstore.server.service import AgentStoreService, Limits

from .grpc_helpers import eventually, self_signed_cert

TOKEN = "remote-test-token"


@pytest.fixture
async def server_store() -> AsyncIterator[agentstore.Store]:
    store = await agentstore.open("memory://", pricing=False)
    yield store
    await store.close()


async def _start(store: agentstore.Store, port: int = 0, **kw: Any) -> GrpcServerHandle:
    return await start_grpc_server(AgentStoreService(store), "127.0.0.1", port, **kw)


def counting_reducer(state: State, event: agentstore.Event) -> State:
    """A reducer only the client knows: counts events whose payload has "n"."""
    state = agentstore.default_reducer(state, event)
    if isinstance(event.payload, dict) and "n" in event.payload:
        state.data["n_total"] = state.data.get("n_total", 0) + event.payload["n"]
    return state


async def test_open_by_url_with_a_token_and_a_client_side_reducer(
    server_store: agentstore.Store,
) -> None:
    handle = await _start(server_store, token=TOKEN)
    url = f"grpc://127.0.0.1:{handle.port}"
    try:
        async with agentstore.open(url, token=TOKEN, reducer=counting_reducer) as store:
            session = await store.create_session(name="remote", labels={"via": "grpc"})
            for n in (1, 2, 3):
                await store.append(session.id, agentstore.new_event("custom_step", {"n": n}))
            state = await store.get_state(session.id)
            assert state.data["n_total"] == 6 and state.version == 3
            assert await store.resolve_session_id(session.id[:10]) == session.id
        # The server's own store holds exactly what the client appended.
        assert [e.payload for e in await server_store.replay(session.id)] == [
            {"n": 1},
            {"n": 2},
            {"n": 3},
        ]
        with pytest.raises(UnauthenticatedError, match="token"):
            async with agentstore.open(url, token="wrong") as store:
                await store.get_session(session.id)
        with pytest.raises(UnauthenticatedError):
            async with agentstore.open(url) as store:
                await store.list_sessions()
    finally:
        await handle.stop(grace=1)


async def test_errors_come_back_as_the_same_classes(server_store: agentstore.Store) -> None:
    handle = await _start(server_store)
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{handle.port}") as store:
            session = await store.create_session()
            await store.append(session.id, agentstore.new_event("custom", 1))
            with pytest.raises(agentstore.ConcurrencyError) as err:
                await store.append(session.id, agentstore.new_event("custom", 2), expected_seq=0)
            assert (err.value.expected, err.value.actual) == (0, 1)
            with pytest.raises(agentstore.SessionNotFoundError):
                await store.get_session("no-such-session")
            with pytest.raises(agentstore.SessionExistsError):
                await store.create_session(session_id=session.id)
    finally:
        await handle.stop(grace=1)


async def test_grpcs_verifies_the_server_certificate(
    server_store: agentstore.Store, tmp_path: Path
) -> None:
    cert, key = self_signed_cert(tmp_path)
    handle = await _start(server_store, tls=(cert, key))
    try:
        url = f"grpcs://localhost:{handle.port}"
        async with agentstore.open(url, backend_options={"tls_ca": str(cert)}) as store:
            assert (await store.create_session(name="over-tls")).name == "over-tls"
        with pytest.raises(StorageUnavailableError):  # not trusted: no connection
            async with agentstore.open(url, backend_options={"timeout": 5}) as store:
                await store.list_sessions()
    finally:
        await handle.stop(grace=1)


async def test_a_server_that_goes_away_and_comes_back(server_store: agentstore.Store) -> None:
    handle = await _start(server_store)
    port = handle.port
    async with agentstore.open(f"grpc://127.0.0.1:{port}") as store:
        session = await store.create_session()
        event = agentstore.new_event("custom", {"step": 1})
        await handle.stop(grace=1)
        with pytest.raises(StorageUnavailableError, match="retrying is safe"):
            await store.append(session.id, event)
        handle = await _start(server_store, port)
        try:
            # The channel reconnects by itself; retrying the same event id is safe.
            with anyio.fail_after(15):
                while True:
                    try:
                        await store.append(session.id, event)
                        break
                    except StorageUnavailableError:
                        await anyio.sleep(0.1)
            await store.append(session.id, event)  # a duplicate retry writes nothing
            assert [e.id for e in await server_store.replay(session.id)] == [event.id]
        finally:
            await handle.stop(grace=1)


class _Counting(RemoteBackend):
    calls: list[str]

    async def _call(self, name: str, request: Any) -> Any:
        self.calls.append(name)
        return await super()._call(name, request)


async def test_a_follower_waits_on_a_server_stream_without_polling(
    server_store: agentstore.Store,
) -> None:
    handle = await _start(server_store)
    address = f"127.0.0.1:{handle.port}"
    follower_backend = _Counting(address)
    follower_backend.calls = []
    try:
        async with (
            agentstore.open(f"grpc://{address}") as writer,
            await agentstore.Store(follower_backend) as reader,
        ):
            session = await writer.create_session()
            got: list[int] = []

            async def follow() -> None:
                async for event in reader.stream(session.id, follow=True):
                    got.append(event.sequence_number)
                    if len(got) == 2:
                        return

            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                service_streams = handle.service.health
                await eventually(lambda: service_streams()["streams"] == 1)  # it waits
                before = list(follower_backend.calls)
                await writer.append(session.id, agentstore.new_event("custom", 1))
                await writer.append(session.id, agentstore.new_event("custom", 2))
            assert got == [1, 2]
            # It waited on a server stream (a polling backend never opens one, so the
            # stream count above would not have reached 1) and asked for no last_seq.
            assert "LastSeq" not in before
    finally:
        await handle.stop(grace=1)


async def test_a_wait_ends_with_storage_unavailable_when_the_server_stops(
    server_store: agentstore.Store,
) -> None:
    handle = await _start(server_store)
    async with agentstore.open(f"grpc://127.0.0.1:{handle.port}") as store:
        session = await store.create_session()
        failure: list[BaseException] = []

        async def follow() -> None:
            try:
                async for _ in store.stream(session.id, follow=True):
                    pass
            except StorageUnavailableError as exc:
                failure.append(exc)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                await eventually(lambda: handle.service.health()["streams"] == 1)
                await handle.stop(grace=5)
        # The server ended the wait itself as it began to stop (not by its grace timeout).
        assert len(failure) == 1 and "going away" in str(failure[0])


def test_a_bad_url_and_a_missing_extra_are_clear_errors() -> None:
    with pytest.raises(agentstore.InvalidInputError, match="grpc://host:port"):
        agentstore.open("grpc://")
    with pytest.raises(agentstore.InvalidInputError, match="grpc://host:port"):
        agentstore.open("grpc://host:1/some/path")


async def test_one_store_follows_at_most_its_connections_share_of_sessions(
    server_store: agentstore.Store,
) -> None:
    service = AgentStoreService(server_store, Limits(max_streams_per_client=2))
    handle = await start_grpc_server(service, "127.0.0.1", 0)
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{handle.port}") as store:
            sids = [(await store.create_session()).id for _ in range(3)]
            refused: list[BaseException] = []

            async def follow(sid: str) -> None:
                try:
                    async for _ in store.stream(sid, follow=True):
                        pass
                except StorageUnavailableError as exc:
                    refused.append(exc)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(follow, sids[0])
                    tg.start_soon(follow, sids[1])
                    await eventually(lambda: service.health()["streams"] == 2)
                    await follow(sids[2])  # a third on the same connection: refused
                    assert len(refused) == 1 and "unavailable" in str(refused[0])
                    tg.cancel_scope.cancel()
    finally:
        await handle.stop(grace=1)


async def test_appends_of_many_tasks_share_one_call_and_a_cancelled_one_spares_the_rest(
    server_store: agentstore.Store,
) -> None:
    handle = await _start(server_store)
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{handle.port}", pricing=False) as store:
            sids = [(await store.create_session()).id for _ in range(4)]
            acked: dict[int, str] = {}

            async def append(i: int) -> None:
                stored = await store.append(sids[i % 4], agentstore.new_event("custom", i))
                acked[i] = stored.id

            doomed: list[anyio.CancelScope] = []

            async def cancelled_append(i: int) -> None:
                with anyio.CancelScope() as scope:
                    doomed.append(scope)
                    await append(i)

            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(cancelled_append if i % 5 == 0 else append, i)
                # One pass of the loop: every append has started and waits on the call.
                await anyio.lowlevel.checkpoint()
                for scope in doomed:
                    scope.cancel()
            # Every append that was not cancelled got its answer; nothing failed.
            assert {i for i in range(40) if i % 5} <= set(acked)
            for k, sid in enumerate(sids):
                stored = await server_store.replay(sid)
                # Per session, in the order they were sent; each acknowledged one is there.
                assert [e.payload for e in stored] == sorted(e.payload for e in stored)
                assert {acked[i] for i in acked if i % 4 == k} <= {e.id for e in stored}
            # The call is still good for the next append.
            assert (await store.append(sids[0], agentstore.new_event("custom", 99))).id
    finally:
        await handle.stop(grace=1)

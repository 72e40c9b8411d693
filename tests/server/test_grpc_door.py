"""The gRPC door's own duties: token, TLS, health, reflection, live follow and its limits."""

from __future__ import annotations

from pathlib import Path

import anyio
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.service import Limits

from .grpc_helpers import (
    error_of,
    eventually,
    new_event,
    read_to_end,
    running_door,
    self_signed_cert,
)

TOKEN = "s3cret-token-for-tests"


async def test_a_call_without_the_right_token_is_refused() -> None:
    async with running_door(token=TOKEN) as door:
        for metadata in [(), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await door.api.CreateSession(pb.CreateSessionRequest(), metadata=metadata)
            assert error_of(err.value)[:2] == (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")
        follow = door.api.Follow(pb.FollowRequest(session_id="x"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await follow.read()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert door.service.store is not None
        assert await door.service.store.list_sessions() == []  # nothing was created

        good = (("authorization", f"Bearer {TOKEN}"),)
        created = await door.api.CreateSession(pb.CreateSessionRequest(), metadata=good)
        assert created.id
        # Health checks need no token (load balancers and orchestrators probe them).
        health = health_pb2_grpc.HealthStub(door.channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="agentstore.v1.AgentStore")
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_tls_serves_a_client_that_trusts_the_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    async with running_door(tls=(cert, key)) as door:
        session = await door.api.CreateSession(pb.CreateSessionRequest(name="tls"))
        assert session.name == "tls"
        # A plaintext client cannot talk to the TLS port.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{door.handle.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.AgentStoreStub(plain).GetSession(
                    pb.GetSessionRequest(session_id=session.id), timeout=5
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_reflection_describes_the_services_without_the_proto_file() -> None:
    async with running_door() as door:
        stub = reflection_pb2_grpc.ServerReflectionStub(door.channel)

        async def ask() -> reflection_pb2.ServerReflectionResponse:
            call = stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            async for reply in call:
                return reply
            raise AssertionError("no reply")

        names = {s.name for s in (await ask()).list_services_response.service}
        assert {
            "agentstore.v1.AgentStore",
            "agentstore.v1.Storage",
            "grpc.health.v1.Health",
        } <= names


async def test_follow_sends_the_past_then_live_events_and_heartbeats() -> None:
    async with running_door(limits=Limits(heartbeat=0.2)) as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        await door.api.Append(pb.AppendRequest(session_id=sid, events=[new_event("custom", 1)]))
        call = door.api.Follow(pb.FollowRequest(session_id=sid, from_seq=1))
        first = await call.read()
        assert first.event.sequence_number == 1
        beat = await call.read()  # nothing new for 0.2 s: a heartbeat
        assert beat.WhichOneof("kind") == "heartbeat"
        await door.api.Append(pb.AppendRequest(session_id=sid, events=[new_event("custom", 2)]))
        while (msg := await call.read()).WhichOneof("kind") != "event":
            pass
        assert msg.event.sequence_number == 2
        call.cancel()


async def test_follow_of_an_unknown_session_fails_with_its_code() -> None:
    async with running_door() as door:
        call = door.api.Follow(pb.FollowRequest(session_id="missing"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert error_of(err.value)[:2] == (grpc.StatusCode.NOT_FOUND, "session_not_found")


async def test_one_connection_holds_a_bounded_number_of_follows() -> None:
    async with running_door(limits=Limits(max_streams_per_client=2)) as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        await door.api.Append(pb.AppendRequest(session_id=sid, events=[new_event("custom", 1)]))
        open_calls = [door.api.Follow(pb.FollowRequest(session_id=sid)) for _ in range(2)]
        for call in open_calls:
            assert (await call.read()).event.sequence_number == 1
        third = door.api.Follow(pb.FollowRequest(session_id=sid))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await third.read()
        assert error_of(err.value)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "server_busy")
        open_calls[0].cancel()
        await eventually(lambda: door.service.health()["streams"] == 1)  # a slot given back
        fourth = door.api.Follow(pb.FollowRequest(session_id=sid))
        assert (await fourth.read()).event.sequence_number == 1
        for call in (open_calls[1], fourth):
            call.cancel()


async def test_a_follower_that_never_reads_is_dropped_and_costs_bounded_memory() -> None:
    limits = Limits(stream_queue=8, send_timeout=0.5, heartbeat=30)
    # No BDP probing: the client's receive window stays at its initial 64 KiB.
    options = [("grpc.http2.bdp_probe", 0)]
    async with running_door(limits=limits, channel_options=options) as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        blob = "x" * 20_000
        for _ in range(10):
            await door.api.Append(
                pb.AppendRequest(session_id=sid, events=[new_event("custom", blob)] * 1)
            )
        call = door.api.Follow(pb.FollowRequest(session_id=sid))  # and never read
        await eventually(lambda: door.service.health()["streams"] == 1)
        # 2 MB more than the windows can hold: the server must block, then drop it.
        for _ in range(10):
            await door.api.Append(
                pb.AppendRequest(
                    session_id=sid, events=[new_event("custom", blob) for _ in range(10)]
                )
            )
        await eventually(lambda: door.service.health()["streams"] == 0)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read_to_end(call)
        assert error_of(err.value)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "server_busy")
        # The server is fine and serves the next caller.
        assert (await door.api.GetSession(pb.GetSessionRequest(session_id=sid))).event_count == 110


async def test_stopping_the_server_ends_live_follows_cleanly() -> None:
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        await door.api.Append(pb.AppendRequest(session_id=sid, events=[new_event("custom", 1)]))
        call = door.api.Follow(pb.FollowRequest(session_id=sid))
        assert (await call.read()).event.sequence_number == 1
        with anyio.fail_after(5):
            await door.handle.stop(grace=5)
            rest = await read_to_end(call)
        assert [m for m in rest if m.WhichOneof("kind") == "event"] == []
        assert await call.code() == grpc.StatusCode.OK


async def test_stopping_does_not_wait_its_grace_for_a_follower_that_stopped_reading() -> None:
    # The status of a follow it ended waits behind the messages the client does not take;
    # once no call is being handled, the server cancels such calls instead of waiting.
    no_window_growth = [("grpc.http2.bdp_probe", 0)]  # HTTP/2's 64 KiB window stays
    async with running_door(channel_options=no_window_growth) as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        call = door.api.Follow(pb.FollowRequest(session_id=sid))
        await eventually(lambda: door.service.health()["streams"] == 1)
        for _ in range(20):  # ~10 MB the follower does not read
            events = [new_event("big", "x" * 10_000) for _ in range(50)]
            await door.api.Append(pb.AppendRequest(session_id=sid, events=events))
        with anyio.fail_after(10):
            await door.handle.stop(grace=30)
        call.cancel()

"""The AgentStore gRPC service over loopback: what an agent in another language relies on."""

from __future__ import annotations

import grpc
import orjson
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.service import Limits

from .grpc_helpers import error_of, new_event, read_to_end, running_door


async def test_a_session_round_trip_keeps_payloads_exactly_as_sent() -> None:
    async with running_door() as door:
        session = await door.api.CreateSession(
            pb.CreateSessionRequest(name="worker", labels={"env": "dev"})
        )
        assert session.name == "worker" and dict(session.labels) == {"env": "dev"}
        payload = b'{"query":"BER -> MUC","n":[1,2.5,null],"u":"\xc3\xa9"}'
        reply = await door.api.Append(
            pb.AppendRequest(
                session_id=session.id,
                events=[
                    pb.NewEvent(type="user_message", payload_json=payload),
                    new_event(
                        "llm_response",
                        {"text": "ok"},
                        metadata_json=orjson.dumps({"tokens_in": 7, "tokens_out": 3}),
                    ),
                ],
                expected_seq=0,
            )
        )
        assert [e.sequence_number for e in reply.events] == [1, 2]
        batches = [
            b async for b in door.api.ReadEvents(pb.ReadEventsRequest(session_id=session.id))
        ]
        events = [e for b in batches for e in b.events]
        assert events[0].payload_json == payload
        assert orjson.loads(events[1].metadata_json) == {"tokens_in": 7, "tokens_out": 3}
        assert events[0].timestamp.endswith("Z")

        state = orjson.loads(
            (await door.api.GetState(pb.GetStateRequest(session_id=session.id))).state_json
        )
        assert state["version"] == 2 and state["tokens"]["input"] == 7
        at_one = orjson.loads(
            (
                await door.api.GetState(pb.GetStateRequest(session_id=session.id, at_seq=1))
            ).state_json
        )
        assert at_one["version"] == 1
        stats = orjson.loads(
            (await door.api.GetStats(pb.GetStatsRequest(session_id=session.id))).stats_json
        )
        assert stats["events"] == 2

        # The same store, read in-process, holds exactly what the wire said.
        stored = await door.service.store.replay(session.id)
        assert stored[0].payload == orjson.loads(payload)


async def test_read_filters_and_a_fork() -> None:
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        kinds = ["user_message", "tool_called", "tool_result", "tool_called", "error"]
        await door.api.Append(
            pb.AppendRequest(
                session_id=sid, events=[new_event(k, {"i": i}) for i, k in enumerate(kinds)]
            )
        )

        async def read(**kw: object) -> list[int]:
            req = pb.ReadEventsRequest(session_id=sid, **kw)  # type: ignore[arg-type]
            return [e.sequence_number async for b in door.api.ReadEvents(req) for e in b.events]

        assert await read(types=["tool_called"]) == [2, 4]
        assert await read(from_seq=2, to_seq=4) == [2, 3, 4]
        assert await read(limit=2) == [1, 2]
        first = (await door.service.store.replay(sid))[0].timestamp
        assert first is not None
        assert await read(since=first.isoformat(), to_seq=1) == [1]
        fork = await door.api.Fork(pb.ForkRequest(session_id=sid, at_seq=3, name="branch"))
        assert fork.event_count == 3 and fork.parent_id == sid and fork.forked_at == 3


async def test_list_sessions_pages_with_a_cursor_and_filters_by_label() -> None:
    async with running_door() as door:
        ids = []
        for i in range(5):
            s = await door.api.CreateSession(
                pb.CreateSessionRequest(labels={"team": "a" if i % 2 else "b"})
            )
            ids.append(s.id)
        seen: list[str] = []
        cursor = ""
        while True:
            page = await door.api.ListSessions(pb.ListSessionsRequest(limit=2, cursor=cursor))
            seen += [s.id for s in page.sessions]
            cursor = page.next_cursor
            if not cursor:
                break
        assert seen == list(reversed(ids))
        team_a = await door.api.ListSessions(pb.ListSessionsRequest(labels={"team": "a"}))
        assert {s.id for s in team_a.sessions} == {ids[1], ids[3]}
        found = await door.api.FindSession(pb.FindSessionRequest(ref=ids[2][:12]))
        assert found.id == ids[2]
        await door.api.DeleteSession(pb.DeleteSessionRequest(session_id=ids[0]))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.api.GetSession(pb.GetSessionRequest(session_id=ids[0]))
        assert error_of(err.value)[:2] == (grpc.StatusCode.NOT_FOUND, "session_not_found")


async def test_a_retried_append_with_the_same_id_writes_nothing_new() -> None:
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        req = pb.AppendRequest(session_id=sid, events=[new_event("custom_step", 1, id="evt-1")])
        first = await door.api.Append(req)
        again = await door.api.Append(req)
        assert again.events[0].sequence_number == first.events[0].sequence_number == 1
        assert len(await door.service.store.replay(sid)) == 1


async def test_errors_carry_their_status_and_stable_code_and_write_nothing() -> None:
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        await door.api.Append(pb.AppendRequest(session_id=sid, events=[new_event("custom", 1)]))

        async def fails(call: object) -> tuple[grpc.StatusCode, str, dict[str, object]]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call  # type: ignore[misc]
            return error_of(err.value)

        code, name, details = await fails(
            door.api.Append(
                pb.AppendRequest(session_id=sid, events=[new_event("custom", 2)], expected_seq=0)
            )
        )
        assert (code, name) == (grpc.StatusCode.ABORTED, "concurrency_conflict")
        assert details == {"session_id": sid, "expected": 0, "actual": 1}

        bad_json = pb.NewEvent(type="custom", payload_json=b'{"a": 1')
        code, name, _ = await fails(
            door.api.Append(
                pb.AppendRequest(session_id=sid, events=[new_event("custom", 3), bad_json])
            )
        )
        assert (code, name) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_event")

        code, name, _ = await fails(
            door.api.Append(pb.AppendRequest(session_id=sid, events=[new_event("Not A Type!", 1)]))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and name.startswith("invalid")

        for hostile in ("../../etc/passwd", "a/b", "", "x" * 200):
            code, name, _ = await fails(
                door.api.GetSession(pb.GetSessionRequest(session_id=hostile))
            )
            assert (code, name) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_session_id"), hostile

        code, name, _ = await fails(
            door.api.Append(pb.AppendRequest(session_id="nope", events=[new_event("custom", 1)]))
        )
        assert (code, name) == (grpc.StatusCode.NOT_FOUND, "session_not_found")
        assert len(await door.service.store.replay(sid)) == 1  # nothing written


async def test_a_message_over_the_limit_is_refused_and_the_server_stays_up() -> None:
    limits = Limits(max_body_bytes=64 * 1024, max_batch=10)
    async with running_door(limits=limits) as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        big = pb.AppendRequest(session_id=sid, events=[new_event("custom", "x" * 100_000)])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.api.Append(big)
        assert error_of(err.value)[:2] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "payload_too_large")
        huge = pb.AppendRequest(session_id=sid, events=[new_event("custom", "x" * 1_000_000)])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.api.Append(huge)  # beyond even the transport's limit
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        many = pb.AppendRequest(session_id=sid, events=[new_event("custom", i) for i in range(11)])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.api.Append(many)
        assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")
        assert await door.service.store.replay(sid) == []
        ok = await door.api.Append(
            pb.AppendRequest(session_id=sid, events=[new_event("custom", 1)])
        )
        assert ok.events[0].sequence_number == 1


async def test_update_session_changes_only_what_is_flagged() -> None:
    async with running_door() as door:
        sid = (
            await door.api.CreateSession(pb.CreateSessionRequest(name="a", labels={"k": "v"}))
        ).id
        s = await door.api.UpdateSession(
            pb.UpdateSessionRequest(session_id=sid, set_name=True, name="b")
        )
        assert s.name == "b" and dict(s.labels) == {"k": "v"}
        s = await door.api.UpdateSession(
            pb.UpdateSessionRequest(
                session_id=sid, set_budget=True, budget=pb.Budget(max_tokens=100)
            )
        )
        assert s.budget.max_tokens == 100 and not s.budget.HasField("max_cost_usd")
        assert s.name == "b"
        stored = await door.service.store.get_session(sid)
        assert stored.budget == agentstore.Budget(max_tokens=100)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"n": 123456789012345678901234567890}',  # beyond 64 bits: orjson would make a float
        b"[" * 2000 + b"]" * 2000,  # nested too deep
        b'{"x": 1e400}',  # infinity
        b'{"x": NaN}',
        b'"\\ud800"',  # a lone surrogate
        b"\xff\xfe",  # not UTF-8
        b'{"a": 1} {"b": 2}',  # two documents
        # nesting orjson reads but Python's json module does not, and a long digit run
        b"[" * 1000 + b"123456789012345678901234567890" + b"]" * 1000,
        b"[" * 1000 + b"18446744073709551615" + b"]" * 1000,  # the same, within 64 bits
    ],
    ids=[
        "bigint",
        "deep",
        "inf",
        "nan",
        "surrogate",
        "not-utf8",
        "two-docs",
        "deep-bigint",
        "deep-long-int",
    ],
)
async def test_hostile_json_is_refused_before_anything_is_written(payload: bytes) -> None:
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        request = pb.AppendRequest(
            session_id=sid, events=[pb.NewEvent(type="custom", payload_json=payload)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.api.Append(request)
        assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_event")
        assert await door.service.store.replay(sid) == []


async def test_a_message_that_does_not_parse_is_invalid_input_and_the_server_stays_up() -> None:
    # A string field that is not UTF-8 (a Go client's []byte cast to string), or garbage.
    not_utf8 = (
        pb.GetSessionRequest(session_id="AAAA").SerializeToString().replace(b"AAAA", b"A\xff")
    )
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        calls: list[tuple[str, bytes]] = [
            ("/agentstore.v1.AgentStore/GetSession", not_utf8),
            ("/agentstore.v1.AgentStore/Append", b"\xff\xff\xff\xff"),
            ("/agentstore.v1.Storage/LastSeq", not_utf8),
        ]
        for method, raw in calls:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await door.channel.unary_unary(method)(raw)
            assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")
            assert "Unexpected" not in (err.value.details() or ""), method
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read_to_end(
                door.channel.unary_stream("/agentstore.v1.AgentStore/ReadEvents")(raw)
            )
        assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")

        # On an AppendStream: what was read before is appended and answered, then the call
        # ends with the error.
        call = door.channel.stream_stream(
            "/agentstore.v1.AgentStore/AppendStream",
            response_deserializer=pb.AppendStreamResponse.FromString,
        )()
        good = pb.AppendStreamRequest(
            tag=1, append=pb.AppendRequest(session_id=sid, events=[new_event("custom", 1)])
        )
        await call.write(good.SerializeToString())
        await call.write(b"\xff\xff\xff\xff")
        reply = await call.read()
        assert (reply.tag, reply.WhichOneof("result")) == (1, "ok")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read_to_end(call)
        assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")
        assert [e.payload for e in await door.service.store.replay(sid)] == [1]
        ok = await door.api.GetSession(pb.GetSessionRequest(session_id=sid))
        assert ok.event_count == 1

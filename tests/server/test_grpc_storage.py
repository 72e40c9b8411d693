"""The Storage gRPC service trusts no client: ids validated, events decoded and re-encoded.

A remote backend's `Store` has already validated its events, but anything can speak
gRPC: these tests send hostile messages straight to the service and check that the
error is clear, nothing is written, and the log stays what an in-process append writes.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import orjson
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb

from .grpc_helpers import error_of, read_to_end, running_door


def pending(payload: bytes, **fields: object) -> pb.PendingEvent:
    fields.setdefault("id", "e-1")
    fields.setdefault("type", "custom")
    return pb.PendingEvent(payload_json=payload, **fields)  # type: ignore[arg-type]


async def test_hostile_events_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    async with (
        agentstore.open(tmp_path / "data", pricing=False) as store,
        running_door(store) as door,
    ):
        sid = (await store.create_session()).id
        cases = {
            "not JSON": pending(b'{"a": 1'),
            "two values": pending(b'{"a": 1}\n{"b": 2}'),
            "NaN": pending(b'{"a": NaN}'),
            "bad type": pending(b"1", type="Bad Type"),
            "empty id": pending(b"1", id=""),
            "long id": pending(b"1", id="x" * 129),
            "metadata not an object": pending(b"1", metadata_json=b"[1]"),
            "metadata of the wrong type": pending(b"1", metadata_json=b'{"tokens_in": "many"}'),
            "a count as a string": pending(b"1", metadata_json=b'{"tokens_in": "5"}'),
            "a cost as a boolean": pending(b"1", metadata_json=b'{"cost_usd": true}'),
            "naive timestamp": pending(b"1", timestamp="2026-01-01T00:00:00"),
            "year 10000 in UTC": pending(b"1", timestamp=BEYOND_UTC),
        }
        for name, event in cases.items():
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await door.storage.Append(pb.StorageAppendRequest(session_id=sid, events=[event]))
            code, kind, _ = error_of(err.value)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, name
            assert kind.startswith("invalid"), (name, kind)
        for hostile in ("../escape", "a/b", "..", ""):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await door.storage.Append(
                    pb.StorageAppendRequest(session_id=hostile, events=[pending(b"1")])
                )
            assert error_of(err.value)[1] == "invalid_session_id", hostile
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await door.storage.SaveSnapshot(
                    pb.Snapshot(session_id=hostile, version=1, state_json=b"{}", created_at="x")
                )
            assert error_of(err.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert await store.replay(sid) == []
        assert not list((tmp_path / "data").rglob("escape*"))


BEYOND_UTC = "9999-12-31T23:59:59-14:00"  # a valid time whose UTC is in the year 10000


async def test_a_time_beyond_the_utc_range_is_refused_and_breaks_nothing(tmp_path: Path) -> None:
    # It used to be stored as sent: the session list (or the session) then failed for
    # every client with internal_error, since reading it back converts it to UTC.
    async with (
        agentstore.open(tmp_path / "data", pricing=False) as store,
        running_door(store) as door,
    ):
        sid = (await store.create_session()).id
        session = pb.Session(id="from-the-future", created_at=BEYOND_UTC)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.storage.CreateSession(pb.StorageCreateSessionRequest(session=session))
        assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")
        snapshot = pb.Snapshot(session_id=sid, version=0, state_json=b"{}", created_at=BEYOND_UTC)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.storage.SaveSnapshot(snapshot)
        assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")
        for read in (
            door.storage.Read(pb.ReadEventsRequest(session_id=sid, until=BEYOND_UTC)),
            door.api.ReadEvents(pb.ReadEventsRequest(session_id=sid, since=BEYOND_UTC)),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await read_to_end(read)
            assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")
        assert [s.id for s in await store.list_sessions()] == [sid]
        assert not (tmp_path / "data" / "sessions" / "from-the-future.json").exists()


async def test_the_log_holds_the_servers_encoding_of_what_a_client_sent(tmp_path: Path) -> None:
    async with (
        agentstore.open(tmp_path / "data", pricing=False) as store,
        running_door(store) as door,
    ):
        sid = (await store.create_session()).id
        # Valid JSON spread over lines would break a JSON-lines log if stored as sent.
        spread = b'{\n  "a": [1,\n 2],\n  "b": "x"\n}'
        reply = await door.storage.Append(
            pb.StorageAppendRequest(session_id=sid, events=[pending(spread)])
        )
        assert reply.written == 1 and reply.events[0].sequence_number == 1
        assert orjson.loads(reply.events[0].payload_json) == {"a": [1, 2], "b": "x"}
        lines = (tmp_path / "data" / "events" / f"{sid}.jsonl").read_bytes().splitlines()
        assert len(lines) == 1 and orjson.loads(lines[0])["payload"] == {"a": [1, 2], "b": "x"}
        # And the store reads it back like any other event.
        assert [e.payload for e in await store.replay(sid)] == [{"a": [1, 2], "b": "x"}]


async def test_reads_and_id_lookups_are_checked_like_the_stores_own() -> None:
    # Storage.Read and FindSessionIds reach the backend without the Store's checks: a
    # negative limit or a NUL in a prefix was a 500 (storage_error) on PostgreSQL.
    async with running_door() as door:
        sid = (await door.service.store.create_session()).id
        for bad in (
            pb.ReadEventsRequest(session_id=sid, limit=-1),
            pb.ReadEventsRequest(session_id=sid, to_seq=-1),
            pb.ReadEventsRequest(session_id=sid, from_seq=-1),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await read_to_end(door.storage.Read(bad))
            assert error_of(err.value)[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")
        for prefix in ("a\x00", "../", "a/b", "x" * 129):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await door.storage.FindSessionIds(pb.FindSessionIdsRequest(prefix=prefix, limit=5))
            code = error_of(err.value)[:2]
            assert code == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_session_id"), prefix
        found = await door.storage.FindSessionIds(pb.FindSessionIdsRequest(prefix=sid[:4], limit=5))
        assert list(found.ids) == [sid]

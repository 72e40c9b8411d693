"""AppendStream: many appends over one gRPC call, with the unary Append's rules per append."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import grpc
import orjson
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.service import Limits

from .grpc_helpers import error_of, eventually, new_event, read_to_end, running_door

TOKEN = "s3cret-token-for-tests"


def _append(tag: int, sid: str, *events: pb.NewEvent, **fields: Any) -> pb.AppendStreamRequest:
    return pb.AppendStreamRequest(
        tag=tag, append=pb.AppendRequest(session_id=sid, events=list(events), **fields)
    )


async def _answers(call: Any, count: int) -> dict[int, pb.AppendStreamResponse]:
    out = {}
    with anyio.fail_after(10):
        for _ in range(count):
            reply = await call.read()
            assert reply is not grpc.aio.EOF
            out[reply.tag] = reply
    return out


@contextlib.contextmanager
def _locked_log(data_dir: Path, sid: str) -> Iterator[None]:
    """Hold a session's log lock as another process's writer would, until the block ends."""
    fd = os.open(data_dir / "events" / f"{sid}.jsonl", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _waiting_for_lock(data_dir: Path, sid: str) -> bool:
    """True once some writer waits for the log lock `_locked_log` holds (/proc/locks lists
    a blocked request with "->")."""
    inode = (data_dir / "events" / f"{sid}.jsonl").stat().st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and line.split()[-3].endswith(f":{inode}") for line in lines)


async def test_pipelined_appends_to_one_session_land_in_the_order_sent() -> None:
    async with running_door() as door:
        sids = [(await door.api.CreateSession(pb.CreateSessionRequest())).id for _ in range(3)]
        call = door.api.AppendStream()
        # Everything is sent before any answer is read: 30 appends in flight at once.
        for i in range(30):
            await call.write(_append(i + 1, sids[i % 3], new_event("custom", i)))
        answers = await _answers(call, 30)
        await call.done_writing()
        assert await read_to_end(call) == []
        assert await call.code() == grpc.StatusCode.OK
        assert sorted(answers) == list(range(1, 31))
        for k, sid in enumerate(sids):
            stored = await door.service.store.replay(sid)
            assert [e.payload for e in stored] == list(range(k, 30, 3))
            mine = [answers[i + 1].ok.events[0] for i in range(k, 30, 3)]
            assert [e.sequence_number for e in mine] == list(range(1, 11))
            assert [e.id for e in mine] == [e.id for e in stored]


async def test_an_append_waiting_for_its_log_does_not_hold_back_another_session(
    tmp_path: Path,
) -> None:
    # A call that has carried one session makes its appends one after another (they would
    # wait for each other anyway); from its first append to another session on, appends to
    # different sessions run concurrently. Here another writer holds one session's log.
    async with agentstore.open(tmp_path) as store, running_door(store) as door:
        for sid in ("first", "slow", "fast"):
            await store.create_session(session_id=sid)
            await store.append(sid, agentstore.new_event("custom", 0))
        call = door.api.AppendStream()
        await call.write(_append(1, "first", new_event("custom", 1)))
        assert (await _answers(call, 1))[1].ok.events[0].sequence_number == 2
        with _locked_log(tmp_path, "slow"):
            await call.write(_append(2, "slow", new_event("custom", 2)))
            await eventually(lambda: _waiting_for_lock(tmp_path, "slow"))
            await call.write(_append(3, "fast", new_event("custom", 3)))
            assert list(await _answers(call, 1)) == [3]  # while "slow" still waits
        assert (await _answers(call, 1))[2].ok.events[0].sequence_number == 2
        await call.done_writing()
        assert await read_to_end(call) == []
        assert await call.code() == grpc.StatusCode.OK


async def test_a_client_that_pipelines_to_one_session_is_read_ahead(tmp_path: Path) -> None:
    # Appends sent before the one in progress is answered make the call concurrent: the
    # server reads on while "s" waits for its log, and so answers "t" meanwhile.
    async with agentstore.open(tmp_path) as store, running_door(store) as door:
        for sid in ("s", "t"):
            await store.create_session(session_id=sid)
            await store.append(sid, agentstore.new_event("custom", 0))
        call = door.api.AppendStream()
        with _locked_log(tmp_path, "s"):
            for tag in (1, 2):
                await call.write(_append(tag, "s", new_event("custom", tag)))
            await eventually(lambda: _waiting_for_lock(tmp_path, "s"))
            await call.write(_append(3, "t", new_event("custom", 3)))
            assert list(await _answers(call, 1)) == [3]
        answers = await _answers(call, 2)
        assert [answers[tag].ok.events[0].sequence_number for tag in (1, 2)] == [2, 3]
        await call.done_writing()
        assert await read_to_end(call) == []


async def test_a_failed_append_is_answered_with_its_error_and_the_call_goes_on() -> None:
    limits = Limits(max_body_bytes=64 * 1024, max_batch=10)
    async with running_door(limits=limits) as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        call = door.api.AppendStream()
        await call.write(_append(1, sid, new_event("custom", 1, id="first"), expected_seq=0))
        await call.write(_append(2, sid, new_event("custom", 2), expected_seq=0))  # stale
        await call.write(_append(3, "nope", new_event("custom", 3)))
        bad_json = pb.NewEvent(type="custom", payload_json=b'{"a": NaN}')
        await call.write(_append(4, sid, new_event("custom", 4), bad_json))
        await call.write(_append(5, sid, new_event("custom", "x" * 100_000)))
        await call.write(_append(6, sid, *[new_event("custom", i) for i in range(11)]))
        await call.write(_append(7, sid, new_event("custom", 1, id="first")))  # a retry
        await call.write(_append(8, sid, new_event("custom", 8)))
        answers = await _answers(call, 8)
        await call.done_writing()
        assert await call.code() == grpc.StatusCode.OK

        def error(tag: int) -> tuple[str, str, dict[str, Any]]:
            err = answers[tag].error
            assert answers[tag].WhichOneof("result") == "error"
            return err.status, err.code, orjson.loads(err.details_json or b"{}")

        assert error(2)[:2] == ("ABORTED", "concurrency_conflict")
        assert error(2)[2]["actual"] == 1
        assert error(3)[:2] == ("NOT_FOUND", "session_not_found")
        assert error(4)[:2] == ("INVALID_ARGUMENT", "invalid_event")
        assert error(5)[:2] == ("RESOURCE_EXHAUSTED", "payload_too_large")
        assert error(6)[:2] == ("INVALID_ARGUMENT", "invalid_input")
        # The retry of event "first" wrote nothing new; the last append went on normally.
        assert answers[7].ok.events[0].sequence_number == 1
        assert answers[8].ok.events[0].sequence_number == 2
        assert [e.payload for e in await door.service.store.replay(sid)] == [1, 8]


async def test_the_storage_stream_keeps_the_backend_rules() -> None:
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        call = door.storage.AppendStream()
        pending = pb.PendingEvent(id="e1", type="custom", payload_json=b"1")
        for tag, expected in ((1, 0), (2, 0)):
            request = pb.StorageAppendRequest(
                session_id=sid, events=[pending], expected_seq=expected
            )
            await call.write(pb.StorageAppendStreamRequest(tag=tag, append=request))
        bad = pb.StorageAppendRequest(session_id="../etc", events=[pending])
        await call.write(pb.StorageAppendStreamRequest(tag=3, append=bad))
        answers = await _answers(call, 3)
        await call.done_writing()
        assert answers[1].ok.written == 1
        # Idempotent: the same id again writes nothing, even with a stale expected_seq.
        assert answers[2].ok.written == 0
        assert answers[3].error.code == "invalid_session_id"
        assert len(await door.service.store.replay(sid)) == 1


async def test_a_stream_without_the_token_is_refused() -> None:
    async with running_door(token=TOKEN) as door:
        call = door.api.AppendStream()  # the refusal comes before anything is sent
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert error_of(err.value)[:2] == (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")
        good = (("authorization", f"Bearer {TOKEN}"),)
        sid = (await door.api.CreateSession(pb.CreateSessionRequest(), metadata=good)).id
        call = door.api.AppendStream(metadata=good)
        await call.write(_append(1, sid, new_event("custom", 1)))
        assert (await call.read()).ok.events[0].sequence_number == 1
        await call.done_writing()


async def test_stopping_the_server_answers_what_it_read_and_ends_the_call() -> None:
    async with running_door() as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        call = door.api.AppendStream()
        await call.write(_append(1, sid, new_event("custom", 1)))
        assert (await call.read()).ok.events[0].sequence_number == 1
        # The call is open and idle: stopping must not wait out the grace period for it.
        with anyio.fail_after(4):
            await door.handle.stop(grace=5)
            assert await read_to_end(call) == []
        assert await call.code() == grpc.StatusCode.OK
        assert len(await door.service.store.replay(sid)) == 1


async def test_stopping_the_server_mid_append_answers_that_append(tmp_path: Path) -> None:
    # The append the server is making when it begins to stop is finished and answered (it
    # is stored: an unanswered append must be one the server never read).
    async with agentstore.open(tmp_path) as store, running_door(store) as door:
        await store.create_session(session_id="s")
        await store.append("s", agentstore.new_event("custom", 0))
        call = door.api.AppendStream()
        # The call's first append is a probe (made by a task); the next ones of a client
        # that waits for each answer are made by the task reading the call: this one.
        await call.write(_append(1, "s", new_event("custom", 1)))
        assert (await _answers(call, 1))[1].ok.events[0].sequence_number == 2
        async with anyio.create_task_group() as tg:
            with _locked_log(tmp_path, "s"):
                await call.write(_append(2, "s", new_event("custom", 2)))
                await eventually(lambda: _waiting_for_lock(tmp_path, "s"))
                tg.start_soon(door.handle.stop, 5)
                await eventually(lambda: door.service.stopping)
            # The lock is released: the append lands, is answered, and the call ends.
            with anyio.fail_after(10):
                answers = await read_to_end(call)
        assert [a.ok.events[0].sequence_number for a in answers] == [3]
        assert await call.code() == grpc.StatusCode.OK
        assert len(await store.replay("s")) == 3


async def test_a_client_that_does_not_read_its_answers_is_held_back() -> None:
    limits = Limits(max_stream_appends=4)
    # No BDP probing: the client's receive window stays at its initial 64 KiB.
    options = [("grpc.http2.bdp_probe", 0)]
    async with running_door(limits=limits, channel_options=options) as door:
        sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
        call = door.api.AppendStream()
        blob = "x" * 100_000  # each answer carries it back: one fills the client's window
        wrote_all = anyio.Event()

        async def write_all() -> None:
            for i in range(200):  # 20 MB, far beyond every window and buffer
                await call.write(_append(i + 1, sid, new_event("custom", blob)))
            wrote_all.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_all)
            with anyio.move_on_after(2):
                await wrote_all.wait()
            # Unread answers stop the server from reading more: its memory stays bounded.
            assert not wrote_all.is_set()
            assert len(await door.service.store.replay(sid)) <= 20
            # Once the client reads, everything goes through.
            answers = await _answers(call, 200)
        await call.done_writing()
        assert await call.code() == grpc.StatusCode.OK
        assert [answers[i + 1].ok.events[0].sequence_number for i in range(200)] == list(
            range(1, 201)
        )

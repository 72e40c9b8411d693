"""Review 11's leftover: a stalled streaming read held `agentstore serve`'s SIGTERM for the
whole grace period (30 s), over gRPC and over HTTP alike.

A client that opens a server-streaming read (AgentStore.ReadEvents, or Storage.Read of a
remote backend) and stops reading blocks the server's next write on HTTP/2 flow control;
grpc's graceful stop waited for that call until the grace period ran out. A read is not an
acknowledged write: once the server begins to stop it is cut off (appends in flight still
finish), with an error, never a clean end a client could take for the whole read.

A real server process on a real data directory, a real grpc client that reads one batch
and stops (no BDP probing: its receive window stays small), the time from SIGTERM to the
process's exit.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from tests.server.http_helpers import start_server

pytestmark = pytest.mark.slow

_GRACE = 30.0  # agentstore serve's shutdown grace period (ServerConfig.shutdown_timeout)
_EVENTS = 10_000  # of 4 kB: 40 MB, far beyond what the windows and socket buffers hold


def _seed(data_dir: Path) -> str:
    with agentstore.open_sync(data_dir) as store:
        sid = store.create_session(session_id="long").id
        blob = "x" * 4_000
        for at in range(0, _EVENTS, 1_000):
            store.append_many(sid, [agentstore.new_event("custom", blob) for _ in range(1_000)])
            assert store.get_session(sid).event_count == at + 1_000
    return sid


async def _read_to_the_end(call: Any) -> int:
    """Read the rest of a stream; return how many events it had (fails on a clean end)."""
    got = 0
    while True:
        message = await call.read()
        assert message is not grpc.aio.EOF, "a cut read ended as if complete"
        got += len(message.events)


@pytest.mark.parametrize("rpc", ["AgentStore.ReadEvents", "Storage.Read"])
async def test_sigterm_does_not_wait_for_a_read_that_stopped_reading(
    tmp_path: Path, rpc: str
) -> None:
    sid = _seed(tmp_path / "data")
    log = tmp_path / "server.log"
    cmd = [sys.executable, "-m", "agentstore_cli", "serve", "--data-dir", str(tmp_path / "data")]
    cmd += ["--no-http", "--grpc-port", "0"]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        target = orjson.loads(proc.stdout.readline())["listening"]["grpc"]
        options = [("grpc.http2.bdp_probe", 0), ("grpc.max_receive_message_length", -1)]
        async with (
            grpc.aio.insecure_channel(target, options=options) as lazy,
            grpc.aio.insecure_channel(target) as other,
        ):
            request = pb.ReadEventsRequest(session_id=sid)
            if rpc == "AgentStore.ReadEvents":
                call = pb_grpc.AgentStoreStub(lazy).ReadEvents(request)
            else:
                call = pb_grpc.StorageStub(lazy).Read(request)
            got = len((await call.read()).events)  # it reads... then stops
            assert got > 0
            # The server still answers others while the read is stalled.
            stub = pb_grpc.AgentStoreStub(other)
            session = await stub.GetSession(pb.GetSessionRequest(session_id=sid))
            assert session.event_count == _EVENTS
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(_GRACE + 30)
            took = time.monotonic() - started
            assert code == 0
            assert took < _GRACE / 3, f"SIGTERM took {took:.1f} s with a stalled read open"
            # What the client had not read yet ends in an error, not as if complete.
            with pytest.raises(grpc.aio.AioRpcError):
                got += await _read_to_the_end(call)
            assert got < _EVENTS
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    text = log.read_text()
    assert "the store is closed" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("path", ["events", "events?format=jsonl", "export"])
def test_sigterm_does_not_wait_for_an_http_read_that_stopped_reading(
    tmp_path: Path, path: str
) -> None:
    # The same over HTTP: uvicorn waited its graceful timeout (30 s) for the streamed
    # response, then cancelled it with a traceback in the log.
    sid = _seed(tmp_path / "data")
    srv = start_server(tmp_path / "data")
    try:
        with (
            httpx.Client(base_url=srv.url, timeout=60) as http,
            http.stream("GET", f"/v1/sessions/{sid}/{path}") as response,
        ):
            assert response.status_code == 200
            chunks = response.iter_raw()
            got = len(next(chunks))  # it reads... then stops
            started = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            code = srv.proc.wait(_GRACE + 30)
            took = time.monotonic() - started
            assert code == 0
            assert took < _GRACE / 3, f"SIGTERM took {took:.1f} s with a stalled read open"
            # The rest ends in an error (an unfinished chunked body), not as if complete.
            with pytest.raises(httpx.RemoteProtocolError):
                got += _drain(chunks)
            assert got < _EVENTS * 4_000
    finally:
        srv.stop()
    text = srv.log.read_text()
    assert "the store is closed" in text
    assert "Traceback" not in text


def _drain(chunks: Iterator[bytes]) -> int:
    return sum(len(chunk) for chunk in chunks)

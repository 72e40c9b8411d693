"""A gRPC follower that never reads does not grow a real server's memory with the log."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import grpc
import orjson
import pytest

from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc

from .grpc_helpers import new_event

pytestmark = pytest.mark.slow


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_a_follower_that_never_reads_costs_bounded_server_memory(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "agentstore_cli", "serve", "--data-dir", str(tmp_path / "d")]
    cmd += ["--no-http", "--grpc-port", "0", "--stream-send-timeout", "120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        target = orjson.loads(proc.stdout.readline())["listening"]["grpc"]
        async with (
            grpc.aio.insecure_channel(target) as writer_channel,
            # No BDP probing: the follower's receive window stays at its initial size.
            grpc.aio.insecure_channel(target, options=[("grpc.http2.bdp_probe", 0)]) as lazy,
        ):
            writer = pb_grpc.AgentStoreStub(writer_channel)
            sid = (await writer.CreateSession(pb.CreateSessionRequest())).id
            blob = "x" * 20_000

            async def append_mib(mib: int) -> None:
                for _ in range(mib * 5):  # 10 events of 20 kB a call: 200 kB
                    batch = [new_event("custom", blob) for _ in range(10)]
                    await writer.Append(pb.AppendRequest(session_id=sid, events=batch))

            await append_mib(4)
            call = pb_grpc.AgentStoreStub(lazy).Follow(pb.FollowRequest(session_id=sid))
            assert (await call.read()).event.sequence_number == 1  # it follows... then stops
            await append_mib(4)  # let the server fill the window and its queue
            before = rss_kib(proc.pid)
            await append_mib(40)  # 40 MiB more that the follower never reads
            grown = rss_kib(proc.pid) - before
            assert grown < 16 * 1024, f"the server grew by {grown} KiB for an idle follower"
            call.cancel()
            # The server is fine: the writer goes on.
            session = await writer.GetSession(pb.GetSessionRequest(session_id=sid))
            assert session.event_count == 48 * 50
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()

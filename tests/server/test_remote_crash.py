"""A server process killed mid-run: the client gets StorageUnavailableError, nothing
acknowledged is lost, and once a new server is up the same client goes on (retries safe)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anyio
import orjson
import pytest

import agentstore
from agentstore import StorageUnavailableError

pytestmark = pytest.mark.slow


def serve(data_dir: Path, port: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    """Start `agentstore serve` (gRPC only) on a file store; return it and its port."""
    cmd = [sys.executable, "-m", "agentstore_cli", "serve", "--data-dir", str(data_dir)]
    cmd += ["--no-http", "--grpc-port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read().decode() if proc.stderr else "no output"
    return proc, int(orjson.loads(line)["listening"]["grpc"].rsplit(":", 1)[1])


def stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    proc.send_signal(sig)
    proc.wait(30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


async def test_a_killed_server_loses_nothing_acknowledged_and_the_client_goes_on(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    proc, port = serve(data)
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{port}") as store:
            session = await store.create_session()
            acked = [
                (await store.append(session.id, agentstore.new_event("custom", i))).id
                for i in range(20)
            ]
            stop(proc, signal.SIGKILL)
            retry = agentstore.new_event("custom", "after the crash")
            with pytest.raises(StorageUnavailableError):
                await store.append(session.id, retry)

            proc, _ = serve(data, port)
            with anyio.fail_after(20):  # the channel reconnects by itself
                while True:
                    try:
                        await store.append(session.id, retry)
                        break
                    except StorageUnavailableError:
                        await anyio.sleep(0.1)
            await store.append(session.id, retry)  # retried once more: still one copy
            events = await store.replay(session.id)
            assert [e.id for e in events] == [*acked, retry.id]
    finally:
        if proc.poll() is None:
            stop(proc, signal.SIGTERM)


async def test_sigterm_while_remote_clients_append_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    proc, port = serve(data)
    acked: list[str] = []
    enough = anyio.Event()
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{port}") as store:
            sids = [(await store.create_session()).id for _ in range(2)]

            async def writer(worker: int) -> None:
                # Appends ride one AppendStream call shared by the four writers.
                for n in range(100_000):
                    event = agentstore.new_event("custom", {"worker": worker, "n": n})
                    try:
                        await store.append(sids[worker % 2], event)
                    except StorageUnavailableError:
                        return  # the server is going away: expected
                    acked.append(event.id)
                    if len(acked) >= 200:
                        enough.set()

            async with anyio.create_task_group() as tg:
                for worker in range(4):
                    tg.start_soon(writer, worker)
                with anyio.fail_after(60):
                    await enough.wait()
                proc.send_signal(signal.SIGTERM)
                # The open stream must not hold the shutdown up for its grace period.
                with anyio.fail_after(15):
                    while proc.poll() is None:  # noqa: ASYNC110 - a process has no event
                        await anyio.sleep(0.05)
            assert proc.returncode == 0
    finally:
        stop(proc, signal.SIGKILL)  # closes its pipes (a no-op signal once it has exited)
    async with agentstore.open(data) as store:
        stored = [e for sid in sids for e in await store.replay(sid)]
        for sid in sids:
            seqs = [e.sequence_number for e in await store.replay(sid)]
            assert seqs == list(range(1, len(seqs) + 1))
    missing = set(acked) - {e.id for e in stored}
    assert not missing, f"{len(missing)} acknowledged appends were lost"

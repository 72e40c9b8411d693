"""`agentstore copy` through a server keeps how `append_many` batched a session: a data
directory -> `grpc://` (a file store behind the server) -> a data directory gives the same
lines back, byte for byte (their `batch_end` marks, and so their checksums, included)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import grpc

import agentstore
from agentstore.backends.remote import RemoteBackend
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from tests.batches_helpers import append_mixed, log_bytes

from .grpc_helpers import running_door


async def _copy(src: str | Path, dst: str | Path) -> str:
    done = await anyio.run_process(
        [sys.executable, "-m", "agentstore_cli", "copy", str(src), str(dst)], check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def test_a_copy_through_a_server_and_back_gives_the_same_lines(tmp_path: Path) -> None:
    src, middle, back = tmp_path / "src", tmp_path / "middle", tmp_path / "back"
    async with agentstore.open(src) as store:
        sid = (await store.create_session(name="batched")).id
        await append_mixed(store, sid, 0)
    async with (
        await agentstore.open(middle, pricing=False) as served,
        running_door(served) as door,
    ):
        url = f"grpc://{door.target}"
        await _copy(src, url)
        assert log_bytes(middle, sid) == log_bytes(src, sid)  # the server's file store
        async with agentstore.open(url) as remote:  # the marks, as the remote backend reads them
            assert await remote.backend.batch_marks(sid) == {1: 3, 2: 3, 5: 6}
        await _copy(url, back)
        async with agentstore.open(src) as store:  # SRC grows: a resumed copy extends
            await append_mixed(store, sid, 100)
        assert "extended 1" in await _copy(src, url)
        assert "extended 1" in await _copy(url, back)
    assert log_bytes(back, sid) == log_bytes(src, sid)
    async with agentstore.open(back) as copied:
        assert (await copied.verify(sid)).ok


async def test_a_server_whose_storage_keeps_no_batches_says_so() -> None:
    async with running_door() as door:  # an in-memory store: it keeps no batch bounds
        sid = (await door.service.store.create_session()).id
        async with agentstore.open(f"grpc://{door.target}") as remote:
            assert await remote.backend.batch_marks(sid) is None


async def test_a_server_older_than_batch_marks_gives_none() -> None:
    """A server without `Storage.BatchMarks` (its generated base answers UNIMPLEMENTED):
    a copy from it keeps no marks instead of failing."""
    server = grpc.aio.server()
    pb_grpc.add_StorageServicer_to_server(pb_grpc.StorageServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        backend = RemoteBackend(f"127.0.0.1:{port}")
        await backend.open()
        try:
            assert await backend.batch_marks("any") is None
        finally:
            await backend.close()
    finally:
        await server.stop(grace=None)

"""Disk full, I/O errors and files changed under a running store.

Faults are injected at the OS-call boundary: `agentstore.backends.file` makes its writes,
syncs and truncations through `atomic.write_all`, `atomic.sync` and `atomic.truncate`, which
these tests replace. One test fills a real, tiny tmpfs instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import agentstore
from agentstore import SessionNotFoundError, StorageError, new_event
from agentstore.backends import file as file_backend
from agentstore.backends.file import aiosync, atomic, commits


def _log(data: Path, sid: str = "s") -> Path:
    return data / "events" / f"{sid}.jsonl"


def _failing_write(after: int, err: int) -> Callable[[int, bytes], None]:
    """A `_write_all` that writes `after` bytes of the data, then fails with `err`."""

    def write_all(fd: int, data: bytes) -> None:
        if after:
            os.write(fd, data[:after])
        raise OSError(err, os.strerror(err))

    return write_all


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("after", [0, 10, 150])
async def test_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int, batch: int, after: int
) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        before = _log(tmp_path).read_bytes()
        with monkeypatch.context() as patch:
            patch.setattr(atomic, "write_all", _failing_write(after, err))
            with pytest.raises(StorageError) as info:
                await store.append_many("s", [new_event("custom", {"x": n}) for n in range(batch)])
        assert ("disk is full" in str(info.value)) == (err == errno.ENOSPC)
        assert "nothing was appended" in str(info.value)
        assert _log(tmp_path).read_bytes() == before
        # Once the disk works again, the next append gets the next sequence number.
        stored = await store.append("s", new_event("custom", {"i": 1}))
        assert stored.sequence_number == 2
        assert (await store.get_state("s")).event_count == 2
    async with agentstore.open(tmp_path) as store:
        assert [e.payload for e in await store.get_events("s")] == [{"i": 0}, {"i": 1}]
        assert (await store.verify()).ok


@pytest.mark.parametrize("path", ["commit thread", "event loop"])
@pytest.mark.parametrize("err", [errno.EIO, errno.ENOSPC])
async def test_failed_fsync_cuts_back_reopens_and_never_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int, path: str
) -> None:
    synced: list[int] = []
    real_sync = atomic.sync
    if path == "commit thread":
        monkeypatch.setattr(commits, "USE_LOOP", False)

    def failing_sync(fd: int) -> None:
        synced.append(fd)
        raise OSError(err, os.strerror(err))

    async with agentstore.open(tmp_path) as store:
        backend = store.backend
        assert isinstance(backend, file_backend.FileBackend)
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        before = _log(tmp_path).read_bytes()
        old_log = backend._logs.peek("s")
        old_fd = old_log.fd
        with monkeypatch.context() as patch:
            patch.setattr(atomic, "sync", failing_sync)
            if path == "event loop":
                # The kernel's AIO cannot be made to fail on demand: it refuses the sync
                # instead, and the loop's commits sync that flight on a worker thread.
                here = backend._commits._here
                assert here is not None and here.loop is asyncio.get_running_loop()
                patch.setattr(aiosync.AioSyncer, "submit", lambda _, items: [t for _, t in items])
            with pytest.raises(StorageError, match="nothing was appended"):
                await store.append("s", new_event("custom", {"lost": True}))
            # The sync was tried once, never retried; the bytes are cut back out; and the
            # descriptor whose pages the kernel may have dropped is closed.
            assert synced == [old_fd]
            assert _log(tmp_path).read_bytes() == before
            assert backend._logs.peek("s") is None
        calls: list[int] = []

        def counting_sync(fd: int) -> None:
            calls.append(fd)
            real_sync(fd)

        monkeypatch.setattr(atomic, "sync", counting_sync)
        stored = await store.append("s", new_event("custom", {"i": 1}))
        assert stored.sequence_number == 2
        assert len(calls) == 1  # the new append's own sync, on the reopened file
        assert backend._logs.peek("s") is not old_log and old_log.fd is None
    async with agentstore.open(tmp_path) as store:
        assert [e.payload for e in await store.get_events("s")] == [{"i": 0}, {"i": 1}]


async def test_failed_cut_back_still_never_exposes_a_partial_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        before = _log(tmp_path).read_bytes()

        def two_lines_then_full(fd: int, data: bytes) -> None:
            cut = data.index(b"\n", data.index(b"\n") + 1) + 1
            os.write(fd, data[:cut])  # two whole lines of the three
            raise OSError(errno.ENOSPC, "No space left on device")

        def cannot_truncate(fd: int, size: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        with monkeypatch.context() as patch:
            patch.setattr(atomic, "write_all", two_lines_then_full)
            patch.setattr(atomic, "truncate", cannot_truncate)
            with pytest.raises(StorageError):
                await store.append_many("s", [new_event("custom", {"b": n}) for n in range(3)])
        assert _log(tmp_path).read_bytes().count(b"\n") == 3  # the two lines are still there
        # The next append reopens the log, sees an unfinished batch and moves it aside.
        assert (await store.append("s", new_event("custom", {"i": 1}))).sequence_number == 2
        assert [e.payload for e in await store.get_events("s")] == [{"i": 0}, {"i": 1}]
    assert _log(tmp_path).read_bytes().startswith(before)
    assert len(list((tmp_path / "events").glob("s.jsonl.torn-*"))) == 1


async def test_failed_snapshot_does_not_fail_the_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = atomic.write_all

    def no_space_for_snapshots(fd: int, data: bytes) -> None:
        if "/snapshots/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(atomic, "write_all", no_space_for_snapshots)
    async with agentstore.open(tmp_path, snapshot_interval=2) as store:
        await store.create_session(session_id="s")
        for i in range(5):
            await store.append("s", new_event("custom", {"i": i}))
        assert (await store.get_state("s")).event_count == 5
    assert not (tmp_path / "snapshots" / "s.json").exists()
    assert not list((tmp_path / "snapshots").iterdir())  # no temp file left behind
    assert any("could not save a snapshot" in r.getMessage() for r in caplog.records)


async def test_failed_session_creation_leaves_no_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agentstore.open(tmp_path) as store:
        with monkeypatch.context() as patch:
            patch.setattr(atomic, "write_all", _failing_write(5, errno.ENOSPC))
            with pytest.raises(StorageError, match="cannot create session"):
                await store.create_session(session_id="s")
        assert await store.list_sessions() == []
        with pytest.raises(SessionNotFoundError):
            await store.append("s", new_event("custom"))
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
        await store.create_session(session_id="s")  # and it works once the disk does


async def test_deleted_log_under_a_running_store(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": 0}))
        _log(tmp_path).unlink()
        with pytest.raises(StorageError, match="was deleted under a running store"):
            await store.append("s", new_event("custom", {"i": 1}))
        with pytest.raises(StorageError, match="deleted"):
            await store.get_events("s")


async def test_replaced_log_under_a_running_store(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s")
        for i in range(3):
            await store.append("s", new_event("custom", {"i": i}))
        # Another program rewrites the log with one event fewer (a restore from backup).
        lines = _log(tmp_path).read_bytes().splitlines(keepends=True)
        replacement = tmp_path / "replacement"
        replacement.write_bytes(b"".join(lines[:2]))
        os.replace(replacement, _log(tmp_path))
        with pytest.raises(StorageError, match="was replaced under a running store"):
            await store.append("s", new_event("custom", {"i": 3}))
        # The error dropped the stale view: a retry sees the file as it is now.
        stored = await store.append("s", new_event("custom", {"i": 3}))
        assert stored.sequence_number == 3
        assert [e.payload["i"] for e in await store.get_events("s")] == [0, 1, 3]


async def test_replaced_log_is_noticed_by_reads(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s")
        for i in range(3):
            await store.append("s", new_event("custom", {"i": i}))
        assert len(await store.get_events("s")) == 3
        shutil.copy(_log(tmp_path), tmp_path / "copy")
        os.replace(tmp_path / "copy", _log(tmp_path))
        with pytest.raises(StorageError, match="replaced"):
            await store.get_events("s")
        assert len(await store.get_events("s")) == 3


async def test_session_deleted_by_another_store(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as one, agentstore.open(tmp_path) as two:
        await one.create_session(session_id="s")
        await one.append("s", new_event("custom"))
        await two.delete_session("s")
        with pytest.raises(SessionNotFoundError):
            await one.append("s", new_event("custom"))
        with pytest.raises(SessionNotFoundError):
            await one.get_events("s")


# --- a real, tiny, full file system -------------------------------------------------------


@contextlib.contextmanager
def _tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no `mount` command here: cannot make a real tiny file system")
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({result.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


async def test_real_full_file_system(tmp_path: Path) -> None:
    with _tiny_tmpfs(tmp_path / "mnt", "256k") as mnt:
        data = mnt / "data"
        blob = "x" * 10_000
        async with agentstore.open(data, snapshot_interval=0) as store:
            await store.create_session(session_id="filler")
            await store.append("filler", new_event("custom", {"blob": blob * 5}))
            await store.create_session(session_id="s")
            acked = 0
            failure: StorageError | None = None
            while failure is None and acked < 100:
                try:
                    await store.append("s", new_event("custom", {"n": acked, "blob": blob}))
                    acked += 1
                except StorageError as exc:
                    failure = exc
            assert failure is not None and "disk is full" in str(failure)
            assert acked > 5
            # Everything acknowledged is there, and nothing else.
            assert [e.payload["n"] for e in await store.get_events("s")] == list(range(acked))
            assert _log(data).read_bytes().endswith(b"}\n")
            with pytest.raises(StorageError, match="disk is full"):
                await store.append_many("s", [new_event("custom", {"blob": blob})] * 3)
            assert (await store.verify()).ok
            # Free some space: the next append succeeds with the next sequence number.
            await store.delete_session("filler")
            stored = await store.append("s", new_event("custom", {"n": acked}))
            assert stored.sequence_number == acked + 1
        async with agentstore.open(data) as store:
            assert len(await store.get_events("s")) == acked + 1
            assert (await store.verify()).ok


async def test_stale_snapshot_cannot_land_on_a_recreated_session(tmp_path: Path) -> None:
    """A snapshot computed before another process deleted and re-created the session."""
    from datetime import UTC, datetime

    from agentstore.backends.base import SnapshotRecord

    async with agentstore.open(tmp_path) as one, agentstore.open(tmp_path) as two:
        await one.create_session(session_id="s")
        for i in range(3):
            await one.append("s", new_event("tool_called", {"old": i}))
        stale = await one.get_state("s")
        await two.delete_session("s")
        await two.create_session(session_id="s")
        for i in range(4):
            await two.append("s", new_event("custom", {"new": i}))
        # `one` now writes the snapshot it made of the old session: it must not count.
        await one.backend.save_snapshot(
            SnapshotRecord(
                "s", 3, stale.model_dump(mode="json"), one._states.reducer_id, datetime.now(UTC)
            )
        )
        assert not (tmp_path / "snapshots" / "s.json").exists()
    async with agentstore.open(tmp_path) as fresh:
        state = await fresh.get_state("s")
        assert (state.event_count, state.tool_calls) == (4, 0)
        assert (await fresh.verify()).ok

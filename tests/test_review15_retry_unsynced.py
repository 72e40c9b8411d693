"""Review 15: a retry answered from lines a killed writer left unsynced makes them durable.

A writer holds the log's `flock` from its `write` to its `fdatasync`. SIGKILLed between
the two, its lines are whole in the page cache (the kernel writes them back within half
a minute or so) but not durable, and its append was never acknowledged. The next writer
takes them as committed (a whole batch is not a torn tail), and a retry of that append,
every id of it now stored, was answered as stored with no write and so no sync at all:
acknowledged, then lost if the machine went down before the kernel's writeback. The
store promises that a crash loses nothing it acknowledged.

Real processes: the writer really SIGKILLs itself at its sync (its `atomic.sync`); the
page cache's own dirty bit of each of the log's pages (`/proc/kpageflags`, as root) says
whether the answer waited for them to be durable.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.events import Event

_PAGE = mmap.PAGESIZE
_KPF_DIRTY = 1 << 4


def _dirty_pages(path: Path) -> int | None:
    """How many of the file's pages the page cache holds dirty (None: cannot tell here)."""
    try:
        pagemap = open("/proc/self/pagemap", "rb")  # noqa: SIM115
        flags = open("/proc/kpageflags", "rb")  # noqa: SIM115
    except OSError:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    with pagemap, flags:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        finally:
            os.close(fd)
        if addr in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            dirty = 0
            for at in range(0, size, _PAGE):
                # Read (mapped in): reading dirties nothing.
                _ = ctypes.c_char.from_address(addr + at).value
                pagemap.seek((addr + at) // _PAGE * 8)
                entry = struct.unpack("<Q", pagemap.read(8))[0]
                pfn = entry & ((1 << 55) - 1)
                if not entry >> 63 or pfn == 0:  # not present, or its frame hidden from us
                    return None
                flags.seek(pfn * 8)
                if struct.unpack("<Q", flags.read(8))[0] & _KPF_DIRTY:
                    dirty += 1
            return dirty
        finally:
            libc.munmap(addr, size)


def _batch() -> list[Event]:
    return [
        new_event("custom", {"i": i, "pad": "x" * 200}).model_copy(update={"id": f"r-{i}"})
        for i in range(40)
    ]


_WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    import agentstore
    from agentstore import new_event
    from agentstore.backends.file import atomic, commits

    commits.USE_LOOP = False  # the commit thread syncs with `atomic.sync`
    commits.USE_AIO = False

    async def main():
        store = await agentstore.open(sys.argv[1], snapshot_interval=0)
        await store.append("s", new_event("custom", {"i": -1}))  # the log open, synced
        atomic.sync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed at its sync
        batch = [
            new_event("custom", {"i": i, "pad": "x" * 200}).model_copy(update={"id": f"r-{i}"})
            for i in range(40)
        ]
        await store.append_many("s", batch)

    asyncio.run(main())
    """
)


def _write_then_die_at_the_sync(data: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(data)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == -9, done.stderr.decode()


@pytest.mark.parametrize("log_open", [False, True], ids=["fresh-store", "log-open-on-the-loop"])
async def test_a_retry_answered_from_a_killed_writers_lines_waits_for_them_to_be_durable(
    tmp_path: Path, log_open: bool
) -> None:
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        await store.create_session(session_id="s")
    log = tmp_path / "events" / "s.jsonl"
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        if log_open:  # this process appends to the log before the other writer dies
            await store.append("s", new_event("custom", {"i": -2}))
        _write_then_die_at_the_sync(tmp_path)
        dirty = _dirty_pages(log)
        if not dirty:
            pytest.skip("the page cache's dirty bits cannot be read here (or were written back)")
        if log_open:  # caught up on the loop: the retry then lands on the loop
            assert len(await store.get_events("s")) == 42
        again = await store.append_many("s", _batch())
        assert [e.id for e in again] == [f"r-{i}" for i in range(40)]
        first = 3 if log_open else 2
        assert [e.sequence_number for e in again] == list(range(first, first + 40))
        # Acknowledged: the stored lines it answered with are durable by now.
        assert _dirty_pages(log) == 0
        assert len(await store.get_events("s")) == first + 39


_FLUSH_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import agentstore
    from agentstore import new_event

    async def main():
        data = sys.argv[1]
        async with agentstore.open(data, snapshot_interval=0, durability="flush") as store:
            batch = [
                new_event("custom", {"i": i, "pad": "x" * 200}).model_copy(update={"id": f"r-{i}"})
                for i in range(40)
            ]
            await store.append_many("s", batch)

    asyncio.run(main())
    """
)


async def test_a_retry_of_a_flush_writers_batch_is_durable_when_answered(tmp_path: Path) -> None:
    # A store opened with durability="flush" returns once the OS has the lines; another
    # opened with "fsync" promises they are on disk when it answers, its retries too.
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"i": -1}))
    done = subprocess.run(
        [sys.executable, "-c", _FLUSH_WRITER, str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    log = tmp_path / "events" / "s.jsonl"
    if not _dirty_pages(log):
        pytest.skip("the page cache's dirty bits cannot be read here (or were written back)")
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        again = await store.append_many("s", _batch())
        assert [e.sequence_number for e in again] == list(range(2, 42))
        assert _dirty_pages(log) == 0

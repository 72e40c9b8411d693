"""Review of the file listing with the cyclic collector paused.

A listing pauses the collector (process-wide) while it builds its entries. Whatever the
listing meets (hostile session files, a bad cursor, listings on many threads at once),
the collector must be back as the program had it: on if it was on, off if it was off.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import anyio
import pytest

import agentstore
from agentstore.errors import InvalidInputError


async def _make(root: Path, count: int) -> list[str]:
    async with agentstore.open(root) as store:
        return [(await store.create_session(name=f"s{i}")).id for i in range(count)]


def _spoil(root: Path, ids: list[str]) -> None:
    """Hostile session files: not JSON, the wrong JSON, a directory, bad UTF-8."""
    sessions = root / "sessions"
    (sessions / f"{ids[0]}.json").write_bytes(b"{not json")
    (sessions / f"{ids[1]}.json").write_bytes(b"[1, 2, 3]")
    (sessions / f"{ids[2]}.json").unlink()
    (sessions / f"{ids[2]}.json").mkdir()
    (sessions / f"{ids[3]}.json").write_bytes(b'{"id": "\xff\xfe"}')


async def test_hostile_files_and_bad_cursors_leave_the_collector_on(
    tmp_path: Path, collector_on: None
) -> None:
    ids = await _make(tmp_path, 12)
    _spoil(tmp_path, ids)
    async with agentstore.open(tmp_path) as store:
        listed = await store.list_sessions(limit=100)
        assert gc.isenabled()
        assert set(ids[4:]) <= {s.id for s in listed}
        for cursor in ("garbage", "", "0:" + "x" * 500, "\x00"):
            with pytest.raises(InvalidInputError):
                await store.list_sessions_page(limit=5, cursor=cursor)
            assert gc.isenabled(), cursor
        page = await store.list_sessions_page(limit=3)
        while page.next_cursor:
            page = await store.list_sessions_page(limit=3, cursor=page.next_cursor)
        assert gc.isenabled()


async def test_a_program_that_turned_the_collector_off_keeps_it_off(
    tmp_path: Path, collector_on: None
) -> None:
    await _make(tmp_path, 5)
    gc.disable()
    try:
        async with agentstore.open(tmp_path) as store:
            await store.list_sessions()
            await store.list_sessions_page(limit=2)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_listings_on_many_threads_at_once_leave_the_collector_on(
    tmp_path: Path, collector_on: None
) -> None:
    ids = anyio.run(_make, tmp_path, 40)
    _spoil(tmp_path, ids)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    async def listings() -> None:
        async with agentstore.open(tmp_path) as store:
            for _ in range(10):
                assert len(await store.list_sessions(limit=100)) == 36

    def lister() -> None:  # a thread with its own loop and store
        try:
            start.wait()
            anyio.run(listings)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=lister) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gc.isenabled()


def test_a_child_forked_during_another_threads_pause_collects(collector_on: None) -> None:
    # A listing (or a page decode) on another thread holds a pause when this thread
    # forks: in the child that thread does not exist, so its pause must not either.
    import os

    from agentstore._gc import gc_paused

    paused, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gc_paused():
            paused.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        paused.wait()
        assert not gc.isenabled()
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            ok = gc.isenabled()
            with gc_paused():
                ok = ok and not gc.isenabled()
            ok = ok and gc.isenabled()
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        holder.join()
    assert gc.isenabled()

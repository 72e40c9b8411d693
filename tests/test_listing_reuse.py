"""A listing reuses its last directory scan only while the sessions directory is unchanged.

`SessionIndex.newest_first` keeps a scan once the directory had settled (its mtime two
seconds old). These tests age the directory's mtime with `os.utime` to get there at once,
then change the directory the ways other processes do, and check every listing is right.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import agentstore
from agentstore.backends.file.sessions import SessionIndex

_OTHER_PROCESS = """
import asyncio, sys
import agentstore

async def main(path, action, sid):
    async with agentstore.open(path) as store:
        if action == "create":
            await store.create_session(session_id=sid, labels={"env": "other"})
        elif action == "delete":
            await store.delete_session(sid)
        elif action == "relabel":
            await store.update_session(sid, labels={"env": "relabelled"})

asyncio.run(main(*sys.argv[1:]))
"""


def _other_process(path: Path, action: str, sid: str) -> None:
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(path), action, sid], check=True)


def _settle(path: Path) -> None:
    """Make the sessions directory look unchanged for a minute (mtime in the past)."""
    old = time.time_ns() - 60 * 1_000_000_000
    os.utime(path / "sessions", ns=(old, old))


def _index(store: agentstore.Store) -> SessionIndex:
    index = store._backend._index  # type: ignore[attr-defined]
    assert isinstance(index, SessionIndex)
    return index


async def test_a_settled_directory_is_scanned_once_and_changes_are_seen(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        ids = [(await store.create_session(session_id=f"s{i}")).id for i in range(5)]
        _settle(tmp_path)
        assert [s.id for s in await store.list_sessions()] == ids[::-1]
        kept = _index(store).newest_first()
        assert _index(store).newest_first() is kept  # reused: nothing changed

        _other_process(tmp_path, "create", "made-elsewhere")
        listed = [s.id for s in await store.list_sessions()]
        assert listed == ["made-elsewhere", *ids[::-1]]

        _settle(tmp_path)
        await store.list_sessions()
        _other_process(tmp_path, "delete", "s2")
        assert [s.id for s in await store.list_sessions()] == [
            "made-elsewhere",
            "s4",
            "s3",
            "s1",
            "s0",
        ]

        _settle(tmp_path)
        await store.list_sessions()
        _other_process(tmp_path, "relabel", "s3")
        assert [s.id for s in await store.list_sessions(labels={"env": "relabelled"})] == ["s3"]
        page = await store.list_sessions(limit=2)
        assert [s.id for s in page] == ["made-elsewhere", "s4"]


async def test_a_directory_that_just_changed_is_scanned_again(tmp_path: Path) -> None:
    # A change in the same tick of the file system's clock as the scan would not move the
    # mtime: a scan of a directory changed moments ago is never kept.
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="a")
        first = _index(store).newest_first()
        assert _index(store).newest_first() is not first
        stamp = os.stat(tmp_path / "sessions").st_mtime_ns
        (tmp_path / "sessions" / "b.json").write_text(
            '{"id": "b", "created_at": "2099-01-01T00:00:00Z"}'
        )
        os.utime(tmp_path / "sessions", ns=(stamp, stamp))  # the same tick: mtime unchanged
        assert [s.id for s in await store.list_sessions()] == ["b", "a"]


async def test_cursor_pages_over_a_reused_scan(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        ids = [(await store.create_session(labels={"k": str(i % 2)})).id for i in range(25)]
        _settle(tmp_path)
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.list_sessions_page(limit=4, cursor=cursor, labels={"k": "1"})
            seen += [s.id for s in page.sessions]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [sid for i, sid in enumerate(ids) if i % 2][::-1]

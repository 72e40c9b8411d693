"""Review: a reused directory scan must not keep a session out that it could not read.

`SessionIndex.newest_first` reuses its last scan while the sessions directory's (inode,
mtime, size) is unchanged. A session file the scan could not read (a writer such as the
Go original rewriting it in place, so empty for a moment; a transient read error) is left
out of that scan, with a warning. Rewriting a file in place changes nothing in the
directory, so a kept scan would leave the session out of every later listing, until an
unrelated session is created or deleted. Before the reuse, the next listing found it.

The directory is aged with `os.utime`, as tests/test_listing_reuse.py does, so that the
scan is one the index keeps.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import agentstore

_SESSION = b'{"id": "%s", "created_at": "2026-01-01T00:00:00Z", "labels": {"env": "go"}}'


def _settle(path: Path) -> None:
    """Make the sessions directory look unchanged for a minute (mtime in the past)."""
    old = time.time_ns() - 60 * 1_000_000_000
    os.utime(path / "sessions", ns=(old, old))


def _rewrite_in_place(path: Path, data: bytes) -> None:
    # As Go's os.WriteFile does: open the existing file with O_TRUNC, write (same inode).
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)


@pytest.mark.parametrize("read_only", [False, True])
async def test_a_session_file_unreadable_during_a_kept_scan_is_listed_once_readable(
    tmp_path: Path, read_only: bool
) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="ours")
    # A session written by another program (not in agentstore's session index).
    go_file = tmp_path / "sessions" / "go-session.json"
    go_file.write_bytes(_SESSION % b"go-session")
    async with agentstore.open(tmp_path, read_only=read_only) as store:
        _rewrite_in_place(go_file, b"")  # caught mid-rewrite by the next listing
        _settle(tmp_path)
        assert [s.id for s in await store.list_sessions()] == ["ours"]
        _rewrite_in_place(go_file, _SESSION % b"go-session")  # the rewrite completes
        # The directory itself is as it was: nothing in it was created or renamed.
        listed = [s.id for s in await store.list_sessions()]
        assert listed == ["ours", "go-session"]
        assert [s.id for s in await store.list_sessions(labels={"env": "go"})] == ["go-session"]

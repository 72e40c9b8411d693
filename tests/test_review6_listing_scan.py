"""Review: a scan kept for reuse is taken with the directory's stamp from before it.

A session created by another process while a listing scans the directory (here: exactly
while it reads a session file the index does not know) must make the next listing scan
again, even though the scan itself may have missed it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import agentstore
from agentstore.backends.file.sessions import SessionIndex

_SESSION = b'{"id": "%s", "created_at": "2026-01-01T00:00:00Z", "labels": {"env": "go"}}'


def _settle(path: Path) -> None:
    """Make the sessions directory look unchanged for a minute (mtime in the past)."""
    old = time.time_ns() - 60 * 1_000_000_000
    os.utime(path / "sessions", ns=(old, old))


_CREATE_ELSEWHERE = """
import asyncio, sys
import agentstore

async def main(path, sid):
    async with agentstore.open(path) as store:
        await store.create_session(session_id=sid, labels={"env": "other"})

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_session_created_elsewhere_during_a_kept_scan_is_listed_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="ours")
    (tmp_path / "sessions" / "go-session.json").write_bytes(_SESSION % b"go-session")
    real = SessionIndex._read_entry
    calls: list[str] = []

    def read_entry(self: SessionIndex, session_id: str) -> tuple[str, dict[str, str]] | None:
        if not calls:
            subprocess.run(
                [sys.executable, "-c", _CREATE_ELSEWHERE, str(tmp_path), "made-meanwhile"],
                check=True,
                timeout=60,
            )
        calls.append(session_id)
        return real(self, session_id)

    monkeypatch.setattr(SessionIndex, "_read_entry", read_entry)
    async with agentstore.open(tmp_path, read_only=True) as store:
        _settle(tmp_path)
        first = [s.id for s in await store.list_sessions()]
        assert calls[0] == "go-session"
        assert first in (["ours", "go-session"], ["made-meanwhile", "ours", "go-session"])
        listed = [s.id for s in await store.list_sessions()]
        assert listed == ["made-meanwhile", "ours", "go-session"]

"""Review 14: `agentstore copy` into a gRPC server and back out, SIGKILLed mid-way each
time and run again: sessions longer than a page of the copy (1000 events) and a file block
(1024 lines), then an extension of each. The server's data directory and the copy back
hold SRC's lines byte for byte, every event once.

Real processes: `agentstore serve` (gRPC) over a data directory, the copies as
`python -m agentstore_cli copy`, killed with SIGKILL once DST's logs hold half of what
they will.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import agentstore_cli, copy_killed_then_rerun
from tests.server.http_helpers import serving_grpc

pytestmark = pytest.mark.slow

_SIZES = (1, 300, 1025, 7, 900)  # 2233 events a session, a round


async def _grow(data: Path, round_: int) -> None:
    async with agentstore.open(data) as store:
        for s in range(5):
            sid = f"s-{s}"
            if round_ == 0:
                await store.create_session(session_id=sid, name=f"name {s}")
            for size in _SIZES:
                events = [
                    new_event("custom", {"r": round_, "k": k, "pad": "p" * 1000})
                    for k in range(size)
                ]
                await store.append_many(sid, events)


def _logs(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data / "events").glob("*.jsonl"))}


def _size(data: Path) -> int:
    try:
        return sum(p.stat().st_size for p in (data / "events").glob("*.jsonl"))
    except FileNotFoundError:  # not made yet, or a log replaced as it was looked at
        return 0


def _holds(data: Path, at: int) -> Callable[[], Awaitable[bool]]:
    """Whether `data`'s logs hold `at` bytes yet (the copy writes as fast as it can)."""

    async def holds() -> bool:
        return _size(data) >= at

    return holds


def test_a_killed_copy_through_a_server_and_back_gives_every_line_once(tmp_path: Path) -> None:
    src, served, back = tmp_path / "src", tmp_path / "served", tmp_path / "back"
    asyncio.run(_grow(src, 0))
    first = sum(map(len, _logs(src).values()))
    with serving_grpc(served) as where:
        server = f"grpc://{where}"
        asyncio.run(copy_killed_then_rerun(str(src), server, _holds(served, first // 2)))
        asyncio.run(copy_killed_then_rerun(server, str(back), _holds(back, first // 2)))
        assert _logs(served) == _logs(src)
        assert _logs(back) == _logs(src)
        asyncio.run(_grow(src, 1))
        grown = sum(map(len, _logs(src).values()))
        asyncio.run(copy_killed_then_rerun(str(src), server, _holds(served, (first + grown) // 2)))
        asyncio.run(copy_killed_then_rerun(server, str(back), _holds(back, (first + grown) // 2)))
        assert _logs(served) == _logs(src)
        assert _logs(back) == _logs(src)
    verified = agentstore_cli("verify", "--data-dir", back)
    assert verified.returncode == 0, verified.stdout + verified.stderr

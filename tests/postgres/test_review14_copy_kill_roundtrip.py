"""Review 14: `agentstore copy` file -> PostgreSQL -> file, SIGKILLed mid-way each time
and run again, with sessions longer than a file block (1024 lines) and a page of the copy
(1000 events), batches of every size up to past a block, and an extension of them all.

Each killed copy is run again to the end: every event is there once, and the lines that
come back are the source's, byte for byte (batch marks included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import copy_killed_then_rerun

pytestmark = pytest.mark.slow

_SESSIONS = 6
_SIZES = (1, 7, 300, 1, 1025, 2, 400)  # 1736 events a round


async def _grow(data: Path, round_: int) -> None:
    async with agentstore.open(data) as store:
        for s in range(_SESSIONS):
            sid = f"s-{s}"
            if round_ == 0:
                await store.create_session(session_id=sid, name=f"name {s}", labels={"k": "v"})
            for b, size in enumerate(_SIZES[s % 3 :]):
                events = [
                    new_event("custom", {"r": round_, "b": b, "k": k, "pad": "p" * 150})
                    for k in range(size)
                ]
                if size == 1 and b % 2:
                    await store.append(sid, events[0])
                else:
                    await store.append_many(sid, events)


async def _count(admin: Any, schema: str) -> int:
    import asyncpg

    try:
        return int(await admin.fetchval(f'SELECT count(*) FROM "{schema}".events'))
    except asyncpg.UndefinedTableError:  # the copy has not made the schema yet
        return 0


def _file_count(data: Path) -> int:
    if not (data / "events").exists():
        return 0
    return sum(p.stat().st_size for p in (data / "events").glob("*.jsonl"))


def _logs(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data / "events").glob("*.jsonl"))}


async def test_a_killed_copy_there_and_back_gives_every_line_once(
    pg_url: str, pg_schema: str, admin: Any, tmp_path: Path
) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    await _grow(src, 0)
    total = sum(len(log.splitlines()) for log in _logs(src).values())

    async def pg_half() -> bool:
        return await _count(admin, pg_schema) >= total // 2

    async def back_half() -> bool:
        return _file_count(back) >= sum(map(len, _logs(src).values())) // 2

    await copy_killed_then_rerun(str(src), pg_url, pg_half)
    await copy_killed_then_rerun(pg_url, str(back), back_half)
    assert _logs(back) == _logs(src)
    # Every session grows by as much again; the copies extend them, killed mid-way too.
    await _grow(src, 1)
    before_pg = await _count(admin, pg_schema)
    before_back = _file_count(back)

    async def pg_more() -> bool:
        return await _count(admin, pg_schema) >= before_pg + total // 2

    async def back_more() -> bool:
        return _file_count(back) >= before_back + (before_back // 2)

    await copy_killed_then_rerun(str(src), pg_url, pg_more)
    await copy_killed_then_rerun(pg_url, str(back), back_more)
    assert _logs(back) == _logs(src)
    assert await _count(admin, pg_schema) == 2 * total
    async with agentstore.open(back) as store:
        assert (await store.verify()).ok
        for s in range(_SESSIONS):
            session = await store.get_session(f"s-{s}")
            assert (session.name, session.labels) == (f"name {s}", {"k": "v"})

"""Review: another process changes a session in the middle of a read that crosses hops.

A file read now spans several thread hops with turns of the event loop between them. The
change is made exactly between the read's first and second hop: the hop function is
wrapped so that its first call runs the other process to completion first (a real
process on the same data directory), so no timing is involved. Whatever happens, a read
returns the events of its range as they were when it began, never a mix, and the reads
after it see the change.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import agentstore
from agentstore import SessionNotFoundError, Store, new_event
from agentstore.backends.file import reading

N = 1200

OTHER = textwrap.dedent(
    """
    import asyncio, sys
    import agentstore

    async def main(path, action, sid, count):
        count = int(count)
        async with agentstore.open(path) as store:
            events = [
                agentstore.new_event("custom", {"gen": action, "i": i, "pad": "q" * (i % 70)})
                for i in range(count)
            ]
            if action == "append":
                await store.append_many(sid, events)
            elif action == "recreate":
                await store.delete_session(sid)
                await store.create_session(session_id=sid)
                await store.append_many(sid, events)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def _other(path: Path, action: str, sid: str, count: int) -> None:
    subprocess.run(
        [sys.executable, "-c", OTHER, str(path), action, sid, str(count)], check=True, timeout=60
    )


@pytest.fixture
def tiny_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "HOP_BYTES", 8 * 1024)
    monkeypatch.setattr("agentstore.backends.file.lines.READ_CHUNK", 3 * 1024 + 5)


def _between_hops(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> list[int]:
    """Run `change` (on the worker thread) before the read's second hop.

    The first is made when the log is opened; the read then decodes it on the loop.
    """
    calls: list[int] = []
    real = reading._next_chunks

    def hooked(chunks: Iterator[reading.Chunk]) -> tuple[list[reading.Chunk], bool]:
        calls.append(1)
        if len(calls) == 2:
            change()
        return real(chunks)

    monkeypatch.setattr(reading, "_next_chunks", hooked)
    return calls


async def _fill(store: Store) -> str:
    sid = (await store.create_session()).id
    events = [
        new_event("custom", {"gen": "first", "i": i, "pad": "p" * (i % 90)}) for i in range(N)
    ]
    await store.append_many(sid, events[: N // 2])
    await store.append_many(sid, events[N // 2 :])
    return sid


async def test_appends_by_another_process_during_a_read(
    tmp_path: Path, tiny_hops: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = await _fill(store)
        before = await store.replay(sid)
        calls = _between_hops(monkeypatch, lambda: _other(tmp_path, "append", sid, 700))
        during = await store.replay(sid)
        assert len(calls) > 2, "the read made too few hops: no change during it"
        assert during == before
        after = await store.replay(sid)
        assert after[:N] == before
        assert [e.sequence_number for e in after] == list(range(1, N + 701))
        assert [e.payload["gen"] for e in after[N:]] == ["append"] * 700
        # Reads that start from what the first reads learned (checkpoints) agree.
        assert await store.replay(sid, from_seq=N - 3, to_seq=N + 3) == after[N - 4 : N + 3]
        assert await store.replay(sid, from_seq=1800) == after[1799:]


async def test_a_session_made_anew_by_another_process_during_a_read(
    tmp_path: Path, tiny_hops: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = await _fill(store)
        before = await store.replay(sid)
        calls = _between_hops(monkeypatch, lambda: _other(tmp_path, "recreate", sid, 1500))
        during = await store.replay(sid)
        assert len(calls) > 2
        # The read began on the old session: it returns it whole, not part of each.
        assert during == before
        fresh = None
        for _ in range(2):  # the first look may say the session it knew is gone
            try:
                fresh = await store.replay(sid)
                break
            except SessionNotFoundError:
                continue
        assert fresh is not None
        assert [e.sequence_number for e in fresh] == list(range(1, 1501))
        assert {e.payload["gen"] for e in fresh} == {"recreate"}
        # Checkpoints the old read learned must not steer reads of the new log.
        for start in (1023, 1024, 1025, 1400):
            got = await store.replay(sid, from_seq=start, to_seq=start + 5)
            assert got == fresh[start - 1 : start + 5]


async def test_a_writer_killed_mid_append_during_a_read(
    tmp_path: Path, tiny_hops: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = await _fill(store)
        before = await store.replay(sid)
        log = tmp_path / "events" / f"{sid}.jsonl"

        def torn_then_append() -> None:
            # What a writer SIGKILLed in its write leaves: part of a line, no newline.
            fd = os.open(log, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b'{"id":"torn","session_id":"' + sid.encode() + b'","sequ')
            finally:
                os.close(fd)
            _other(tmp_path, "append", sid, 300)  # repairs the tail, then appends

        calls = _between_hops(monkeypatch, torn_then_append)
        assert await store.replay(sid) == before
        assert len(calls) > 2
        after = await store.replay(sid)
        assert after[:N] == before
        assert [e.sequence_number for e in after] == list(range(1, N + 301))
        # The torn bytes were kept aside, not lost and not read as an event.
        assert [p.read_bytes().startswith(b'{"id":"torn"') for p in tmp_path.rglob("*.torn-*")] == [
            True
        ]

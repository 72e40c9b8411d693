"""Review 9d: `agentstore copy` and batch marks while SRC is appended to, and what a copy
reads for a session it skips."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend
from agentstore_cli.copy import _copy_one


class _Source(FileBackend):
    """SRC's data directory, where another writer appends a batch just after a copy has
    read the marks (the window between the marks and the events), and which counts the
    sessions whose marks were read."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.marks_read: list[str] = []
        self.writer: agentstore.Store | None = None

    async def batch_marks(self, session_id: str) -> dict[int, int]:
        marks = await super().batch_marks(session_id)
        self.marks_read.append(session_id)
        if self.writer is not None:
            batch = [new_event("custom", {"late": n}) for n in range(3)]
            await self.writer.append_many(session_id, batch)
        return marks


def _log(data: Path, sid: str) -> bytes:
    return (data / "events" / f"{sid}.jsonl").read_bytes()


async def _batches(store: agentstore.Store, sid: str, start: int) -> None:
    await store.append_many(sid, [new_event("custom", {"n": start + n}) for n in range(3)])
    await store.append(sid, new_event("custom", {"alone": start}))


@pytest.mark.parametrize("extending", [False, True])
async def test_a_batch_appended_while_copying_comes_out_the_same(
    tmp_path: Path, extending: bool
) -> None:
    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    source = _Source(src_dir)
    async with agentstore.open(source) as src, agentstore.open(dst_dir) as dst:
        sid = (await src.create_session()).id
        await _batches(src, sid, 0)
        if extending:  # DST has the beginning: the copy appends SRC's tail batch by batch
            await _copy_one(src, dst, await src.get_session(sid))
            await _batches(src, sid, 10)
        async with agentstore.open(src_dir) as writer:
            source.writer = writer
            # Before the fix: the late batch was read with the events but had no marks,
            # and went in as three lone events; every later copy found DST complete.
            await _copy_one(src, dst, await src.get_session(sid))
            source.writer = None
        await _copy_one(src, dst, await src.get_session(sid))  # the late batch, next time
        assert (await dst.get_session(sid)).event_count == (8 if extending else 4) + 3
    assert _log(dst_dir, sid) == _log(src_dir, sid)


async def test_a_skipped_session_is_not_read_for_its_marks(tmp_path: Path) -> None:
    source = _Source(tmp_path / "src")
    async with agentstore.open(source) as src, agentstore.open(tmp_path / "dst") as dst:
        sid = (await src.create_session()).id
        await _batches(src, sid, 0)
        assert await _copy_one(src, dst, await src.get_session(sid)) == ("copied", 4)
        source.marks_read.clear()
        # Before the fix every session's whole log was read for its marks, skipped or not.
        assert await _copy_one(src, dst, await src.get_session(sid)) == ("skipped", 0)
        assert source.marks_read == []


async def test_a_source_without_batch_bounds_extends_in_one_append(tmp_path: Path) -> None:
    async with agentstore.open(in_memory=True) as src, agentstore.open(tmp_path / "dst") as dst:
        sid = (await src.create_session()).id
        await src.append(sid, new_event("custom", {}))
        assert await src.backend.batch_marks(sid) is None  # memory keeps no batch bounds
        await _copy_one(src, dst, await src.get_session(sid))
        for n in range(5):
            await src.append(sid, new_event("custom", {"n": n}))
        # Before the fix: five appends (five fsyncs; 5,000 lone events took 2.45 s, not
        # 0.66 s), for nothing: SRC cannot tell how its events were batched.
        assert await _copy_one(src, dst, await src.get_session(sid)) == ("extended", 5)
        assert await dst.backend.batch_marks(sid) == {2: 6, 3: 6, 4: 6, 5: 6}
        assert await dst.get_events(sid) == await src.get_events(sid)

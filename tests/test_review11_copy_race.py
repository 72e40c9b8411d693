"""Review 11: two `agentstore copy` runs of one SRC into one DST at once (a cron job that
overlaps a manual run). Each session ends whole in DST, once, and neither run reports a
failure for a session the other copied: before the fix, the run that came second to a new
session said "not copied: already exists" and exited 1, asking to repair or delete a
session that was fine. (A grown session the other extended first was sound: its batches
are the same ids, which an append does not write twice.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend
from agentstore.session import Session
from agentstore_cli.copy import _copy_all, _copy_one


class _Raced(FileBackend):
    """DST, where the other copy writes a session first, just as this one is about to."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.other: Callable[[], Awaitable[object]] | None = None

    async def _let_the_other_go_first(self) -> None:
        if self.other is not None:
            other, self.other = self.other, None
            await other()

    async def create_session_from_pages(self, session: Session, pages: object) -> int:
        await self._let_the_other_go_first()
        return await super().create_session_from_pages(session, pages)  # type: ignore[arg-type]


def _log(data: Path, sid: str) -> bytes:
    return (data / "events" / f"{sid}.jsonl").read_bytes()


async def _batches(store: agentstore.Store, sid: str, start: int) -> None:
    for n in range(3):
        await store.append_many(
            sid, [new_event("custom", {"n": start + n, "k": k}) for k in range(4)]
        )


async def test_a_session_the_other_copy_created_first_is_not_a_failure(tmp_path: Path) -> None:
    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    raced = _Raced(dst_dir)
    async with agentstore.open(src_dir) as src, agentstore.open(raced) as dst:
        sid = (await src.create_session(name="run")).id
        await _batches(src, sid, 0)
        session = await src.get_session(sid)
        async with agentstore.open(dst_dir) as other:
            raced.other = lambda: _copy_one(src, other, session)
            counts = dict.fromkeys(("copied", "skipped", "events", "failed"), 0)
            await _copy_all(src, dst, [sid], Console(stderr=True), counts)
        assert raced.other is None  # the other copy did go first
        assert counts == {"copied": 0, "skipped": 1, "events": 0, "failed": 0}
    assert _log(dst_dir, sid) == _log(src_dir, sid)

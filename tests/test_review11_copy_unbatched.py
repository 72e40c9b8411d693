"""Review 11: a session grown in a SRC that keeps no batch bounds (an in-memory store, a
server older than Storage.BatchMarks) was extended in DST with one append of everything it
gained: held whole in memory, and past a server's message limit when DST is one. Now a page
(1,000 events) an append, each atomic, as a copy reads them (this failed before the fix)."""

from __future__ import annotations

from pathlib import Path

import agentstore
from agentstore import new_event
from agentstore_cli.copy import _copy_one


async def test_a_session_grown_without_batch_bounds_extends_a_page_at_a_time(
    tmp_path: Path,
) -> None:
    async with agentstore.open(in_memory=True) as src, agentstore.open(tmp_path / "dst") as dst:
        sid = (await src.create_session()).id
        await src.append(sid, new_event("custom", {}))
        assert await src.backend.batch_marks(sid) is None
        await _copy_one(src, dst, await src.get_session(sid))
        for k in range(25):
            await src.append_many(sid, [new_event("custom", {"k": k, "i": i}) for i in range(100)])

        assert await _copy_one(src, dst, await src.get_session(sid)) == ("extended", 2500)

        assert await dst.get_events(sid) == await src.get_events(sid)
        marks = await dst.backend.batch_marks(sid)
        assert marks is not None
        # Three appends: 2..1001, 1002..2001 and 2002..2501 (the last of each unmarked).
        assert set(marks.values()) == {1001, 2001, 2501}

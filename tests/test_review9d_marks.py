"""Review 9d: batch marks never leave a data directory's last line marked.

Recovery (`tail.committed_end`) cuts a log's last lines as a torn tail when the last one
carries a `batch_end` beyond itself; a session created with such a line lost its batch the
next time a writer opened the directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import agentstore
from agentstore import InvalidInputError, SessionNotFoundError, new_event
from agentstore.backends.base import PendingEvent
from agentstore.codec import batch_end
from agentstore.store.lifecycle_ops import import_session_of
from agentstore.store.validate import pending_from_stored


async def _exported(data: Path) -> tuple[agentstore.Session, list[agentstore.Event]]:
    async with agentstore.open(data) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(3)])
        exported, events = await store.get_session(sid), await store.get_events(sid)
        await store.delete_session(sid)
    return exported, events


async def _reopened_count(data: Path, sid: str) -> int:
    async with agentstore.open(data) as store:
        await store.append(sid, new_event("custom", {"after": True}))  # a writer opens the log
        return len(await store.get_events(sid)) - 1


async def test_an_import_whose_duplicate_id_moves_a_mark_onto_the_last_line(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    exported, events = await _exported(data)
    twice = events[2].model_copy(update={"id": events[0].id})
    async with agentstore.open(data) as store:
        # Before the fix: accepted, the session showed 0 events and lost both on reopen.
        # Refused since for the repeated id itself, before the marks are looked at.
        with pytest.raises(InvalidInputError, match="repeats the id of event 1"):
            await store.import_session(exported, [*events[:2], twice], batch_marks={1: 3, 2: 3})
        with pytest.raises(SessionNotFoundError):
            await store.get_session(exported.id)
        await store.import_session(exported, events, batch_marks={1: 3, 2: 3})
    assert await _reopened_count(data, exported.id) == 3


@pytest.mark.parametrize("paged", [False, True])
async def test_the_backend_api_cannot_mark_a_last_line(tmp_path: Path, paged: bool) -> None:
    data = tmp_path / "data"
    exported, events = await _exported(data)
    pending = [pending_from_stored(event) for event in events]
    pending[1].batch_end = 3
    pending[2].batch_end = 3  # what a careless caller of create_session could pass
    async with agentstore.open(data) as store:
        fresh = import_session_of(exported)

        async def pages() -> AsyncIterator[list[PendingEvent]]:
            yield pending[:2]
            yield pending[2:]

        create = store.backend.create_session_from_pages(fresh, pages()) if paged else None
        with pytest.raises(InvalidInputError, match="ends a batch and is marked 3"):
            await (create or store.backend.create_session(fresh, pending))
        with pytest.raises(SessionNotFoundError):
            await store.get_session(exported.id)
        pending[2].batch_end = None
        await store.backend.create_session(fresh, pending)
        assert await store.backend.batch_marks(exported.id) == {2: 3}
    assert await _reopened_count(data, exported.id) == 3


async def test_marks_read_in_chunks_are_the_lines_marks(tmp_path: Path) -> None:
    # Over 4 MiB (a chunk boundary falls inside a line), payloads that spell a mark's end.
    data = tmp_path / "data"
    spelled = ',"batch_end":7,"crc32c":"0123abcd"}\n' * 3
    async with agentstore.open(data) as store:
        sid = (await store.create_session()).id
        for n in range(120):
            size = n % 5 + 1
            batch = [new_event("custom", {"t": spelled + "x" * 14000, "n": k}) for k in range(size)]
            if n % 7 == 0:
                await store.append(sid, batch[0])
            else:
                await store.append_many(sid, batch)
        marks = await store.backend.batch_marks(sid)
    lines = (data / "events" / f"{sid}.jsonl").read_bytes().splitlines()
    assert len(b"\n".join(lines)) > 4 * 1024 * 1024
    expected = {seq: mark for seq, line in enumerate(lines, 1) if (mark := batch_end(line))}
    assert marks == expected
    assert len(expected) > 200

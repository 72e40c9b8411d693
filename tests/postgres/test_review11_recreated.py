"""Review 11: a fork or a copy reads its source a page at a time, each page a read of its
own. A source deleted and made again between two pages (another session imported under
its id) gave the later pages of the other: the fork (or the copy) was made of two
sessions' events and said nothing. Now the one deleted is not forked or copied, whole (both
failed before the fix)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

import agentstore
from agentstore import SessionNotFoundError, new_event
from agentstore.backends.base import EventFilter
from agentstore.backends.postgres import PostgresBackend
from agentstore.events import Event
from agentstore_cli.copy import _copy_all

OTHER = {"id": "", "created_at": datetime(2020, 1, 2, tzinfo=UTC)}


class _Remade(PostgresBackend):
    """A store whose session `victim` is deleted and another made under its id by another
    store (`other`) just after its first page is read."""

    victim: str | None = None
    other: agentstore.Store | None = None

    async def read(self, session_id: str, query: EventFilter) -> list[Event]:
        page = await super().read(session_id, query)
        if session_id == self.victim and self.other is not None:
            self.victim = None
            await self.other.delete_session(session_id)
            await self.other.import_session({**OTHER, "id": session_id}, [])
            await self.other.append_many(
                session_id, [new_event("custom", {"other": n}) for n in range(3000)]
            )
        return page


async def _source(store: agentstore.Store) -> str:
    sid = (await store.create_session()).id
    for k in range(3):
        await store.append_many(sid, [new_event("custom", {"k": k, "i": i}) for i in range(1000)])
    return sid


async def test_a_fork_of_a_source_made_again_midway_is_refused(pg_url: str) -> None:
    backend = _Remade(pg_url)
    async with agentstore.open(backend) as store, agentstore.open(pg_url) as other:
        sid = await _source(store)
        backend.victim, backend.other = sid, other
        with pytest.raises(SessionNotFoundError):
            await store.fork(sid, at_seq=2500)
        assert backend.victim is None  # it was made again midway
        assert [s.id for s in await store.list_sessions()] == [sid]  # no fork


async def test_a_copy_of_a_source_made_again_midway_takes_the_one_there_now(
    pg_url: str, tmp_path: Path
) -> None:
    backend = _Remade(pg_url)
    dst_dir = tmp_path / "dst"
    async with agentstore.open(backend) as src, agentstore.open(pg_url) as other:
        sid = await _source(src)
        backend.victim, backend.other = sid, other
        async with agentstore.open(dst_dir) as dst:
            counts = dict.fromkeys(("copied", "skipped", "events", "failed"), 0)
            await _copy_all(src, dst, [sid], Console(stderr=True), counts)
            assert backend.victim is None
            # The copy looked again and took the session there now, all of it.
            assert counts == {"copied": 1, "skipped": 0, "events": 3000, "failed": 0}
            copied = await dst.get_events(sid)
            assert [e.payload for e in copied] == [{"other": n} for n in range(3000)]
            assert (await dst.get_session(sid)).created_at == OTHER["created_at"]

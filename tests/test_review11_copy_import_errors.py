"""Review 11: `Store.import_session` given events that fail, on memory and files (PostgreSQL:
tests/postgres/test_review11_imports.py). The events' own error comes out as it was raised,
nothing is left behind, and the generator it spent is refused when the import is retried
with it: before the fix it yielded nothing more and was imported as an empty session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agentstore
from agentstore import Event, InvalidInputError, new_event

SESSION = {"id": "imported", "created_at": datetime(2026, 1, 2, tzinfo=UTC)}


async def _exported(store: agentstore.Store, count: int) -> list[Event]:
    sid = (await store.create_session()).id
    await store.append_many(sid, [new_event("custom", {"i": i}) for i in range(count)])
    return [e.model_copy(update={"session_id": ""}) for e in await store.get_events(sid)]


@pytest.mark.parametrize("where", ["memory", "files"])
@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_retry_with_the_spent_generator_is_refused(
    tmp_path: Path, where: str, kind: str
) -> None:
    url = "memory://" if where == "memory" else str(tmp_path / "data")
    async with agentstore.open(url) as store:
        events = await _exported(store, 1500)

        async def from_s3() -> AsyncIterator[Event]:
            for event in events:
                if event.sequence_number == 1200:
                    raise ConnectionResetError("the bucket hung up")
                yield event

        def from_disk() -> Iterator[Event]:
            for event in events:
                if event.sequence_number == 1200:
                    raise ConnectionResetError("the disk went away")
                yield event

        spent = from_s3() if kind == "async" else from_disk()
        with pytest.raises(ConnectionResetError):
            await store.import_session(SESSION, spent)
        with pytest.raises(InvalidInputError, match="already run to its end"):
            await store.import_session(SESSION, spent)
        assert [s.id for s in await store.list_sessions()] != ["imported"]
        with pytest.raises(agentstore.SessionNotFoundError):
            await store.get_session("imported")
        # A whole generator, and an empty export, still import.
        done = iter(events)
        assert (await store.import_session(SESSION, done)).event_count == 1500
        empty = {"id": "empty", "created_at": SESSION["created_at"]}
        assert (await store.import_session(empty, iter(()))).event_count == 0

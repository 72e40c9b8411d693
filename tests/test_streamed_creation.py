"""Fork and import write a data directory's new log as they go, never holding it whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agentstore
from agentstore import Event, new_event


def _temp_logs(data: Path) -> list[Path]:
    return [p for p in (data / "events").iterdir() if ".tmp-" in p.name]


async def test_an_import_is_written_while_its_events_are_still_being_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        source = await store.create_session(session_id="src")
        await store.append_many(source.id, [new_event("custom", {"i": i}) for i in range(3000)])
        exported = await store.get_events(source.id)
        await store.delete_session(source.id)  # re-imported below, by the same id
        seen_on_disk: list[int] = []

        def events() -> Iterator[Event]:
            for event in exported:
                if event.sequence_number == 2500:
                    # The first pages are already in the (still invisible) temp log.
                    seen_on_disk.extend(p.stat().st_size for p in _temp_logs(data))
                yield event

        created = await store.import_session(
            {"id": "src", "created_at": datetime.now(UTC)}, events()
        )
        assert created.event_count == 3000
        assert len(seen_on_disk) == 1 and seen_on_disk[0] > 0
        assert _temp_logs(data) == []
        lines = (data / "events" / "src.jsonl").read_bytes().splitlines()
        assert len(lines) == 3000


async def test_a_failed_import_leaves_no_file_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        source = await store.create_session(session_id="src")
        await store.append_many(source.id, [new_event("custom", {"i": i}) for i in range(1500)])
        exported = await store.get_events(source.id)
        await store.delete_session(source.id)

        def events() -> Iterator[Event]:
            yield from exported[:1200]
            raise RuntimeError("the export file was cut short")

        with pytest.raises(RuntimeError, match="cut short"):
            await store.import_session({"id": "src", "created_at": datetime.now(UTC)}, events())
        assert _temp_logs(data) == []
        assert not (data / "events" / "src.jsonl").exists()
        assert await store.list_sessions() == []


async def test_a_fork_of_many_pages(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data") as store:
        source = await store.create_session()
        await store.append_many(source.id, [new_event("custom", {"i": i}) for i in range(2345)])
        fork = await store.fork(source.id, at_seq=2222)
        events = await store.get_events(fork.id)
        assert [e.payload["i"] for e in events] == list(range(2222))
        assert [e.sequence_number for e in events] == list(range(1, 2223))

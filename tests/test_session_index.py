"""The file backend's session index is a cache: listing stays right whatever happens to it."""

from __future__ import annotations

import gc
import json
import uuid
from pathlib import Path

import agentstore
from agentstore.backends.file.layout import INDEX_NAME
from agentstore.backends.file.sessions import _COMPACT_SLACK


async def _ids(path: Path, **filters: object) -> list[str]:
    async with agentstore.open(path, read_only=True) as store:
        return [s.id for s in await store.list_sessions(**filters)]  # type: ignore[arg-type]


async def test_index_is_written_at_creation_and_used(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        ids = [(await store.create_session(labels={"n": str(i)})).id for i in range(5)]
    lines = (tmp_path / INDEX_NAME).read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    assert await _ids(tmp_path) == ids[::-1]
    assert await _ids(tmp_path, labels={"n": "3"}) == [ids[3]]


async def test_sessions_the_index_does_not_know(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        first = await store.create_session(session_id="first")
    # A session written by another tool (the Go original) has no index line.
    (tmp_path / "sessions" / "go-made.json").write_text(
        json.dumps({"id": "go-made", "created_at": "2099-01-01T00:00:00.123456789Z"})
    )
    assert await _ids(tmp_path) == ["go-made", first.id]
    async with agentstore.open(tmp_path) as store:  # a writable store learns it
        assert [s.id for s in await store.list_sessions()] == ["go-made", first.id]
    assert "go-made" in (tmp_path / INDEX_NAME).read_text()


async def test_a_stale_line_is_not_trusted(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s", labels={"env": "dev"})
    # The session is replaced behind the index's back (deleted and re-created by a
    # process that died before writing its index line): a new file, a new inode.
    path = tmp_path / "sessions" / "s.json"
    data = json.loads(path.read_text())
    data["labels"] = {"env": "prod"}
    replacement = path.with_name("replacement")
    replacement.write_text(json.dumps(data, indent=4))
    replacement.replace(path)
    assert await _ids(tmp_path, labels={"env": "dev"}) == []
    assert await _ids(tmp_path, labels={"env": "prod"}) == ["s"]


async def test_garbage_or_missing_index(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        ids = [(await store.create_session()).id for _ in range(3)]
    index = tmp_path / INDEX_NAME
    index.write_bytes(b'{"id": "torn", "ino"\n\x00\x00not json\n[1,2]\n')
    assert await _ids(tmp_path) == ids[::-1]
    index.unlink()
    assert await _ids(tmp_path) == ids[::-1]


async def test_deleted_sessions_leave_the_list_and_the_index_is_compacted(
    tmp_path: Path,
) -> None:
    # A listing compacts the index once its lines pass twice the live sessions plus
    # _COMPACT_SLACK: 600 sessions, 598 deleted, are 1,198 lines (1,100 sessions did the
    # same at twice the cost: each create and delete is a durable file operation).
    count = _COMPACT_SLACK // 2 + 100
    assert 2 * count - 2 > 2 * 2 + _COMPACT_SLACK
    async with agentstore.open(tmp_path) as store:
        ids = [(await store.create_session()).id for _ in range(count)]
        for sid in ids[:-2]:
            await store.delete_session(sid)
        assert [s.id for s in await store.list_sessions()] == ids[:-3:-1]
    lines = (tmp_path / INDEX_NAME).read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(ids[-2:])


async def test_a_deleted_and_recreated_session_is_read_again(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s", labels={"v": "1"})
        await store.delete_session("s")
        await store.create_session(session_id="s", labels={"v": "2"})
        assert [s.labels for s in await store.list_sessions()] == [{"v": "2"}]
    assert await _ids(tmp_path, labels={"v": "1"}) == []


async def test_a_long_lived_store_reads_what_others_add_to_the_index(tmp_path: Path) -> None:
    """The index is parsed once and then only what was appended to it (see `_load`)."""
    async with agentstore.open(tmp_path) as mine, agentstore.open(tmp_path) as other:
        a = await mine.create_session(labels={"team": "a"})
        assert [s.id for s in await mine.list_sessions()] == [a.id]  # parsed now
        b = await other.create_session(labels={"team": "b"})
        await other.update_session(a.id, labels={"team": "b"})  # a new file: a new line
        gone = await other.create_session(labels={"team": "b"})
        await other.delete_session(gone.id)
        assert [s.id for s in await mine.list_sessions(labels={"team": "b"})] == [b.id, a.id]
        # A line caught half-written is left for the next listing, then taken whole.
        index = tmp_path / INDEX_NAME
        line = json.dumps({"id": b.id, "ino": 1, "created": "x", "labels": {}}).encode()
        with index.open("ab") as f:
            f.write(line[:20])
        assert [s.id for s in await mine.list_sessions(labels={"team": "b"})] == [b.id, a.id]
        with index.open("ab") as f:
            f.write(line[20:] + b"\n")  # a stale inode: not trusted, the file is read
        assert [s.id for s in await mine.list_sessions(labels={"team": "b"})] == [b.id, a.id]
        # Replaced whole (compacted by another store): parsed again from the start.
        index.write_bytes(b"")
        assert [s.id for s in await mine.list_sessions()] == [b.id, a.id]


async def test_a_listing_gives_the_cyclic_collector_no_work(tmp_path: Path) -> None:
    # A listing makes entries for every session; collections while they live would walk
    # them (and now and then the whole heap), pausing the event loop too. Sessions laid
    # out directly (5,000 creations would take seconds): more entries than CPython's
    # tuple free lists hold, so they count towards collections.
    for sub in ("sessions", "events", "snapshots"):
        (tmp_path / sub).mkdir()
    for k in range(5000):
        sid = str(uuid.uuid4())
        created = f"2026-01-01T00:{k // 60 % 60:02d}:{k % 60:02d}.{k:06d}Z"
        session = {"id": sid, "created_at": created, "updated_at": created, "event_count": 0}
        (tmp_path / "sessions" / f"{sid}.json").write_bytes(
            json.dumps({**session, "labels": {"team": "a"}}).encode()
        )
        (tmp_path / "events" / f"{sid}.jsonl").write_bytes(b"")
    async with agentstore.open(tmp_path) as store:
        await store.list_sessions(limit=10)  # the index built once, as a long-lived store has
        runs: list[int] = []

        def count(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                runs.append(info["generation"])

        gc.callbacks.append(count)
        try:
            for _ in range(5):
                assert len(await store.list_sessions(limit=100, labels={"team": "a"})) == 100
        finally:
            gc.callbacks.remove(count)
    assert len(runs) <= 5, f"{len(runs)} collections in 5 listings"

"""File-backend specifics: layout, permissions, corrupt lines, read-only, durability."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import agentstore
from agentstore import CorruptLogError, StoreLockedError, new_event


async def test_layout_and_private_permissions(tmp_path: Path) -> None:
    root = tmp_path / "data"
    async with agentstore.open(root, snapshot_interval=2) as store:
        session = await store.create_session(name="n")
        await store.append_many(session.id, [new_event("custom", i) for i in range(3)])
    for directory in (root, root / "sessions", root / "events", root / "snapshots"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = [
        root / "sessions" / f"{session.id}.json",
        root / "events" / f"{session.id}.jsonl",
        root / "snapshots" / f"{session.id}.json",
    ]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    on_disk = json.loads(files[0].read_text())
    assert on_disk["id"] == session.id and on_disk["name"] == "n"
    lines = files[1].read_text().splitlines()
    assert [json.loads(line)["sequence_number"] for line in lines] == [1, 2, 3]
    snapshot = json.loads(files[2].read_text())
    assert snapshot["version"] == 3  # the batch crossed 2: snapshot at its end
    assert snapshot["reducer"].startswith("agentstore.state.default_reducer:")
    assert snapshot["state"]["tokens"] == {"in": 0, "out": 0, "cost_usd": 0.0, "total": 0}
    assert not [p for p in root.rglob("*") if ".tmp" in p.name]


async def test_corrupt_line_in_the_middle_is_reported(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session()
        await store.append_many(session.id, [new_event("custom", i) for i in range(5)])
    log = tmp_path / "events" / f"{session.id}.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"this is": not json}\n'
    log.write_bytes(b"".join(lines))
    async with agentstore.open(tmp_path, read_only=True) as store:
        with pytest.raises(CorruptLogError) as info:
            await store.get_events(session.id)
        assert info.value.path == str(log) and info.value.line == 3
        assert f"{log}:3:" in str(info.value)
        with pytest.raises(CorruptLogError):
            await store.get_state(session.id)
        # Events before the bad line are still readable, and nothing was skipped silently.
        assert len(await store.replay(session.id, to_seq=2)) == 2


async def test_wrong_sequence_number_is_corruption(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session()
        await store.append_many(session.id, [new_event("custom", i) for i in range(3)])
    log = tmp_path / "events" / f"{session.id}.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    del lines[1]  # a gap: 1, 3
    log.write_text("".join(lines))
    async with agentstore.open(tmp_path, read_only=True) as store:
        with pytest.raises(CorruptLogError, match="sequence number 3 where 2 was expected"):
            await store.get_events(session.id)


async def test_read_only_store_writes_nothing(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", 1))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    async with agentstore.open(tmp_path, read_only=True) as store:
        assert (await store.get_state(session.id)).event_count == 1
        with pytest.raises(StoreLockedError):
            await store.append(session.id, new_event("custom", 2))
        with pytest.raises(StoreLockedError):
            await store.create_session()
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


async def test_read_only_needs_an_existing_dir(tmp_path: Path) -> None:
    store = agentstore.open(tmp_path / "missing", read_only=True)
    with pytest.raises(agentstore.StorageError, match="no data directory"):
        await store
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
async def test_unwritable_dir_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreLockedError):
            await agentstore.open(tmp_path / "data")
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize("durability", ["fsync", "flush"])
async def test_durability_modes_persist(tmp_path: Path, durability: str) -> None:
    async with agentstore.open(tmp_path, durability=durability) as store:  # type: ignore[arg-type]
        session = await store.create_session()
        await store.append(session.id, new_event("custom", 1))
    async with agentstore.open(tmp_path) as store:
        assert len(await store.get_events(session.id)) == 1


async def test_bad_durability(tmp_path: Path) -> None:
    with pytest.raises(agentstore.InvalidInputError):
        agentstore.open(tmp_path, durability="sometimes")  # type: ignore[arg-type]


async def test_many_sessions_beyond_the_open_file_limit(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        ids = [(await store.create_session()).id for _ in range(300)]
        for sid in ids:
            await store.append(sid, new_event("custom", sid))
        for sid in ids[:5]:
            await store.append(sid, new_event("custom", 2))
            assert len(await store.get_events(sid)) == 2


async def test_idempotency_index_after_reopen(tmp_path: Path) -> None:
    """The id index built on the first append after a reopen knows every stored id."""
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session()
        odd = new_event("custom", 0)
        odd.id = 'we"ird\\id'
        events = [odd] + [new_event("custom", i) for i in range(1, 2500)]
        await store.append_many(session.id, events[:10])
        await store.append_many(session.id, events[10:])  # a batch: marked lines
    async with agentstore.open(tmp_path) as store:
        again = await store.append_many(session.id, [events[0], events[1234], events[-1]])
        assert [e.sequence_number for e in again] == [1, 1235, 2500]
        assert len(await store.get_events(session.id)) == 2500


async def test_go_events_appended_again_are_duplicates(go_data: Path) -> None:
    from .conftest import GO_SHORT

    async with agentstore.open(go_data) as store:
        events = await store.get_events(GO_SHORT)
        again = await store.append_many(GO_SHORT, events)
        assert again == events
        assert len(await store.get_events(GO_SHORT)) == 6


async def test_reads_near_the_tail_of_a_reopened_log(tmp_path: Path) -> None:
    """Reads that start near the end walk back from the last line; same events either way."""
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session()
        sizes = [10, 70_000, 5, 300, 0, 9_000]
        events = [new_event("custom", {"i": i, "pad": "x" * sizes[i % 6]}) for i in range(60)]
        await store.append_many(session.id, events[:40])
        for event in events[40:]:
            await store.append(session.id, event)
    async with agentstore.open(tmp_path, read_only=True) as store:
        everything = await store.get_events(session.id)
    for from_seq in (60, 59, 57, 41, 40, 39, 31, 2, 1):
        async with agentstore.open(tmp_path, read_only=True) as store:
            got = await store.replay(session.id, from_seq=from_seq)
            assert got == everything[from_seq - 1 :], from_seq
            again = await store.replay(session.id, from_seq=from_seq, to_seq=from_seq)
            assert again == [everything[from_seq - 1]]


async def test_snapshots_per_reducer_share_a_data_directory(tmp_path: Path) -> None:
    """The default reducer keeps Go's place; another reducer has its own file."""

    def counting(state: agentstore.State, event: agentstore.Event) -> agentstore.State:
        state = agentstore.default_reducer(state, event)
        state.data["seen"] = state.data.get("seen", 0) + 1
        return state

    async with (
        agentstore.open(tmp_path, snapshot_interval=2) as plain,
        agentstore.open(tmp_path, snapshot_interval=2, reducer=counting) as custom,
    ):
        await plain.create_session(session_id="s")
        await plain.append_many("s", [new_event("custom", i) for i in range(2)])
        await custom.append_many("s", [new_event("custom", i) for i in range(2)])
        await plain.append_many("s", [new_event("custom", i) for i in range(2)])
        # Snapshots are written behind the appends; each store's get_state waits for its own.
        assert (await custom.get_state("s")).data["seen"] == 6
        assert (await plain.get_state("s")).version == 6
        go_place = tmp_path / "snapshots" / "s.json"
        [other] = list((tmp_path / "snapshots" / ".reducers").glob("*/s.json"))
        assert json.loads(go_place.read_text())["reducer"].startswith(
            "agentstore.state.default_reducer:"
        )
        assert "counting" in json.loads(other.read_text())["reducer"]
        size = await plain.backend.storage_size("s")
        files = [tmp_path / "sessions" / "s.json", tmp_path / "events" / "s.jsonl"]
        assert size == sum(p.stat().st_size for p in [*files, go_place, other])
        await plain.delete_session("s")
        assert not go_place.exists() and not other.exists()

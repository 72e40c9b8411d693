"""Files a store did not write: odd ids, crafted session files, symlinks, edits in place.

Every id read from disk is validated like a caller's, nothing is opened through a symlink,
a bad file is reported with its path while the others stay usable, and no valid session id
can be mistaken for a file of the store's own (temp files, quarantined tails, the index).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import agentstore
from agentstore import (
    CorruptLogError,
    InvalidInputError,
    InvalidSessionIdError,
    StorageError,
    new_event,
)
from agentstore.backends.file.layout import classify, is_valid_id
from agentstore.session import validate_session_id

# Valid ids that look like the store's own bookkeeping names.
LOOKALIKES = [
    "s.json.tmp-999999-0a1b2c3d",
    "s.jsonl.tmp-999999",
    "x.tmp-1-",
    "s.jsonl.torn-20260101T000000000000Z",
    "s.jsonl.torn-20260101T000000000000Z-1",
    "sessions.index.jsonl",
    "reducers",
    "a.",
]


def _dead_pid() -> int:
    pid = 999_999
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


async def test_ids_that_look_like_our_files_are_sessions_like_any_other(tmp_path: Path) -> None:
    # With the pid of a process that does not run: a writer's start-up cleanup of crashed
    # writers' temp files once deleted such a session's files.
    dead = _dead_pid()
    ids = [*LOOKALIKES, f"x.tmp-{dead}-", f"t.json.tmp-{dead}-0a1b2c3d", "s"]
    async with agentstore.open(tmp_path) as store:
        for sid in ids:
            await store.create_session(session_id=sid)
            await store.append(sid, new_event("custom", {"sid": sid}))
    # Writers' start-ups and repair runs leave every one of them alone.
    for _ in range(2):
        async with agentstore.open(tmp_path) as store:
            report = await store.verify(repair=True)
            assert report.ok and report.repairs == [], [str(p) for p in report.problems]
            assert report.notes == []
            for sid in ids:
                [event] = await store.get_events(sid)
                assert event.payload == {"sid": sid}
            assert {s.id for s in await store.list_sessions(limit=100)} == set(ids)
            for sid in ids:
                assert (await store.verify(sid)).ok


@pytest.mark.parametrize(
    "sid",
    [
        *LOOKALIKES,
        "",
        ".",
        "..",
        "a..b",
        "-a",
        "_a",
        "a/b",
        "a\\b",
        "a b",
        "é",
        "a" * 128,
        "a" * 129,
    ],
)
def test_ids_from_file_names_are_held_to_the_callers_rule(sid: str) -> None:
    try:
        validate_session_id(sid)
    except InvalidSessionIdError:
        valid = False
    else:
        valid = True
    assert is_valid_id(sid) == valid
    assert (classify("sessions", f"{sid}.json")[0] == "session") == valid


@pytest.mark.parametrize(
    ("directory", "name", "kind", "owner"),
    [
        ("events", "s.jsonl", "log", "s"),
        ("events", "s.jsonl.torn-20260101T000000000000Z", "quarantine", "s"),
        ("events", "s.jsonl.torn-20260101T000000000000Z.jsonl", "log", None),
        ("events", ".s.jsonl.tmp-12-0a1b2c3d", "temp", None),
        ("sessions", "x.tmp-12-0a.json", "session", "x.tmp-12-0a"),
        ("sessions", "..json", "stray", None),
        ("sessions", "-x.json", "stray", None),
        ("snapshots", ".reducers", "ours", None),
    ],
)
def test_every_name_has_one_meaning(directory: str, name: str, kind: str, owner: str) -> None:
    got_kind, got_owner = classify(directory, name)
    assert got_kind == kind
    if kind == "log" and owner is None:
        assert got_owner == name.removesuffix(".jsonl")
    else:
        assert got_owner == owner


async def test_a_crafted_session_file_cannot_reach_outside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    victim = tmp_path / "victim.jsonl"
    victim.write_bytes(b"precious\n")
    async with agentstore.open(data) as store:
        await store.create_session(session_id="good")
        await store.append("good", new_event("custom"))
    crafted = data / "sessions" / "x.json"
    crafted.write_text(
        json.dumps({"id": "../../victim", "created_at": "2026-01-01T00:00:00Z", "labels": {}})
    )
    with caplog.at_level(logging.WARNING, logger="agentstore"):
        async with agentstore.open(data) as store:
            # The listing goes on without it, and says which file is bad.
            assert [s.id for s in await store.list_sessions()] == ["good"]
            with pytest.raises(CorruptLogError, match=r"x\.json"):
                await store.get_session("x")
            with pytest.raises(CorruptLogError):
                await store.append("x", new_event("custom"))
            report = await store.verify()
            assert [(p.kind, p.path) for p in report.problems] == [("session_file", str(crafted))]
    assert any(str(crafted) in r.getMessage() for r in caplog.records)
    assert victim.read_bytes() == b"precious\n"
    assert not (tmp_path / "victim.json").exists()


async def test_a_garbage_session_file_refuses_appends_and_is_reported(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        for sid in ("a", "b"):
            await store.create_session(session_id=sid)
            await store.append(sid, new_event("custom"))
    path = tmp_path / "sessions" / "a.json"
    path.write_bytes(b"\x00garbage")
    log = tmp_path / "events" / "a.jsonl"
    before = log.read_bytes()
    async with agentstore.open(tmp_path) as store:
        assert [s.id for s in await store.list_sessions()] == ["b"]
        with pytest.raises(CorruptLogError, match="not a valid session file"):
            await store.append("a", new_event("custom"))
        assert (await store.append("b", new_event("custom"))).sequence_number == 2
        report = await store.verify()
        assert [(p.kind, p.path) for p in report.problems] == [("session_file", str(path))]
    assert log.read_bytes() == before


@pytest.mark.parametrize("which", ["log", "session"])
async def test_a_symlink_in_the_data_directory_is_never_followed(
    tmp_path: Path, which: str
) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        for sid in ("s", "other"):
            await store.create_session(session_id=sid)
            await store.append(sid, new_event("custom"))
    target = tmp_path / "outside"
    link = data / ("events/s.jsonl" if which == "log" else "sessions/s.json")
    target.write_bytes(link.read_bytes())
    before = target.read_bytes()
    link.unlink()
    link.symlink_to(target)
    async with agentstore.open(data) as store:
        with pytest.raises(CorruptLogError, match="symbolic link"):
            await store.append("s", new_event("custom", {"through": "the link"}))
        with pytest.raises(CorruptLogError, match="symbolic link"):
            await store.get_events("s")
        assert [s.id for s in await store.list_sessions()] == ["other"]
        assert not (await store.verify()).ok
    assert target.read_bytes() == before


async def test_labels_edited_in_place_never_fool_a_filter_or_prune(tmp_path: Path) -> None:
    """The index is a cache: an edit that keeps the inode must not select the session."""
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s", labels={"env": "dev"})
        await store.create_session(session_id="t", labels={"env": "dev"})
        assert {s.id for s in await store.list_sessions(labels={"env": "dev"})} == {"s", "t"}
    path = tmp_path / "sessions" / "s.json"
    ino = path.stat().st_ino
    obj = json.loads(path.read_text())
    obj["labels"] = {"env": "prod"}
    with path.open("r+") as handle:  # same inode: only the bytes change
        handle.write(json.dumps(obj, indent=2))
        handle.truncate()
    assert path.stat().st_ino == ino
    async with agentstore.open(tmp_path) as store:
        assert [s.id for s in await store.list_sessions(labels={"env": "dev"})] == ["t"]
        assert {s.id: s.labels for s in await store.list_sessions()} == {
            "s": {"env": "prod"},
            "t": {"env": "dev"},
        }
        later = datetime.now(UTC) + timedelta(days=1)
        pruned = await store.prune(older_than=timedelta(0), labels={"env": "dev"}, now=later)
        assert [p.session.id for p in pruned] == ["t"]
        assert (await store.get_session("s")).labels == {"env": "prod"}


async def test_a_stale_index_line_never_puts_a_session_on_the_wrong_page(tmp_path: Path) -> None:
    """Even an index line that matches the file's inode, size and time is re-checked."""
    async with agentstore.open(tmp_path) as store:
        await store.create_session(session_id="s", labels={"env": "dev"})
        await store.list_sessions()
    path = tmp_path / "sessions" / "s.json"
    st = path.stat()
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'"dev"', b'"prd"'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # hide the edit from the index
    async with agentstore.open(tmp_path) as store:
        assert await store.list_sessions(labels={"env": "dev"}) == []


async def test_read_only_errors_say_what_to_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom"))
    log = data / "events" / "s.jsonl"
    log.unlink()
    log.mkdir()
    async with agentstore.open(data, read_only=True) as reader:
        with pytest.raises(CorruptLogError, match="not a regular file"):
            await reader.get_events("s")
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    for read_only in (False, True):
        with pytest.raises(InvalidInputError, match="is a file, not a data directory"):
            async with agentstore.open(afile, read_only=read_only):
                pass
    with pytest.raises(StorageError, match="no data directory"):
        async with agentstore.open(tmp_path / "missing", read_only=True):
            pass

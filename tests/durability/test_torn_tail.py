"""Crash leftovers: torn tails, unfinished batches, temp files and bad snapshots."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import agentstore
from agentstore import CorruptLogError, new_event


async def _make(path: Path, count: int, session_id: str = "s") -> bytes:
    """Create a session with `count` small events; return its log's bytes."""
    async with agentstore.open(path) as store:
        await store.create_session(session_id=session_id)
        for i in range(count):
            await store.append(session_id, new_event("custom", {"i": i}))
    return (path / "events" / f"{session_id}.jsonl").read_bytes()


async def _next_line(tmp_path: Path, good: bytes) -> bytes:
    """Return the real line the 4th append of the same session would write."""
    other = tmp_path / "other"
    (other / "sessions").mkdir(parents=True)
    (other / "events").mkdir()
    (other / "events" / "s.jsonl").write_bytes(good)
    (other / "sessions" / "s.json").write_bytes(
        (tmp_path / "data" / "sessions" / "s.json").read_bytes()
    )
    async with agentstore.open(other) as store:
        await store.append("s", new_event("custom", {"i": 3, "text": "a short line"}))
    return (other / "events" / "s.jsonl").read_bytes()[len(good) :]


def _quarantined(data: Path) -> list[Path]:
    return sorted((data / "events").glob("s.jsonl.torn-*"))


async def test_cut_at_every_byte_offset(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    good = await _make(data, 3)
    line = await _next_line(tmp_path, good)
    assert line.endswith(b"\n") and len(line) > 150
    log = data / "events" / "s.jsonl"
    for cut in range(1, len(line)):
        log.write_bytes(good + line[:cut])
        for leftover in _quarantined(data):
            leftover.unlink()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="agentstore"):
            async with agentstore.open(data) as store:
                events = await store.get_events("s")
                assert [e.payload for e in events] == [{"i": i} for i in range(3)], cut
                # The torn bytes, exactly, are beside the log; the log is its 3 lines.
                [moved] = _quarantined(data)
                assert moved.read_bytes() == line[:cut]
                assert log.read_bytes() == good
                stored = await store.append("s", new_event("custom", {"after": cut}))
                assert stored.sequence_number == 4
                assert (await store.verify()).ok
        assert any("torn tail" in r.getMessage() for r in caplog.records), cut
    # The whole line, newline included, is a complete event: it stays.
    log.write_bytes(good + line)
    async with agentstore.open(data) as store:
        assert len(await store.get_events("s")) == 4


@pytest.mark.parametrize(
    "tail",
    [b"\0" * 300, b'{"half": ', b'{"id":"x","session_id":"s","sequence_number":4'],
    ids=["zeros", "bad-json", "cut-event"],
)
async def test_an_unterminated_last_line_is_a_torn_tail(tmp_path: Path, tail: bytes) -> None:
    data = tmp_path / "data"
    good = await _make(data, 3)
    (data / "events" / "s.jsonl").write_bytes(good + tail)
    async with agentstore.open(data) as store:
        report = await store.verify()
        assert [p.kind for p in report.problems] == ["torn_tail"]
        assert report.problems[0].line == 4
        assert (await store.append("s", new_event("custom"))).sequence_number == 4
    assert [p.read_bytes() for p in _quarantined(data)] == [tail]


@pytest.mark.parametrize(
    "tail",
    [b"\0" * 300 + b"\n", b"garbage\n", b"\n", b'{"half": \n', b"[1,2]\n"],
    ids=["zeros-newline", "garbage-line", "empty-line", "bad-json", "not-an-event"],
)
async def test_a_complete_bad_last_line_is_corruption_not_a_torn_tail(
    tmp_path: Path, tail: bytes
) -> None:
    """A line that ends with its newline was written whole, maybe acknowledged: never cut."""
    data = tmp_path / "data"
    good = await _make(data, 3)
    log = data / "events" / "s.jsonl"
    log.write_bytes(good + tail)
    async with agentstore.open(data) as store:
        report = await store.verify()
        assert [(p.kind, p.line) for p in report.problems] == [
            ("bad_line", 4),
            ("damaged_tail", 4),
        ]
        assert [p.repairable for p in report.problems] == [False, True]
        with pytest.raises(CorruptLogError, match=r"s\.jsonl"):
            await store.append("s", new_event("custom"))
        with pytest.raises(CorruptLogError):
            await store.get_events("s")
    # Nothing was cut, moved or appended.
    assert log.read_bytes() == good + tail
    assert _quarantined(data) == []


async def test_unfinished_batch_is_removed_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        await store.create_session(session_id="s")
        await store.append("s", new_event("custom", {"single": 1}))
        await store.append_many("s", [new_event("custom", {"batch": i}) for i in range(3)])
    log = data / "events" / "s.jsonl"
    whole = log.read_bytes()
    lines = whole.splitlines(keepends=True)
    assert [b'"batch_end":4' in line for line in lines] == [False, True, True, False]
    first = len(lines[0])
    # A crash anywhere in the batch's write leaves none of it.
    for cut in (*range(first + 1, len(whole), 7), len(whole) - 1):
        log.write_bytes(whole[:cut])
        for leftover in _quarantined(data):
            leftover.unlink()
        async with agentstore.open(data) as store:
            assert [e.payload for e in await store.get_events("s")] == [{"single": 1}]
            assert log.read_bytes() == whole[:first]
            [moved] = _quarantined(data)
            assert moved.read_bytes() == whole[first:cut]
    # Complete, the batch is all there.
    log.write_bytes(whole)
    async with agentstore.open(data) as store:
        assert len(await store.get_events("s")) == 4
        assert (await store.verify()).ok


async def test_reader_ignores_a_torn_tail_without_touching_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = await _make(data, 3)
    log = data / "events" / "s.jsonl"
    log.write_bytes(good + b'{"id":"x","sess')
    async with agentstore.open(data, read_only=True) as reader:
        assert len(await reader.get_events("s")) == 3
        assert (await reader.get_session("s")).event_count == 3
    assert log.read_bytes() == good + b'{"id":"x","sess'
    assert not _quarantined(data)


async def test_a_corrupt_middle_line_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = await _make(data, 3)
    lines = good.splitlines(keepends=True)
    log = data / "events" / "s.jsonl"
    log.write_bytes(lines[0] + b"not json\n" + lines[2])
    async with agentstore.open(data) as store:
        with pytest.raises(CorruptLogError) as info:
            await store.get_events("s")
        assert info.value.line == 2 and str(log) in str(info.value)
        report = await store.verify(repair=True)
        assert [(p.kind, p.line) for p in report.problems] == [("bad_line", 2)]
        assert report.repairs == []
    assert log.read_bytes() == lines[0] + b"not json\n" + lines[2]


async def test_stale_temp_files_are_removed_and_ignored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _make(data, 2)
    dead = _dead_pid()
    stale = [
        data / "sessions" / f".s.json.tmp-{dead}-0a1b2c3d",
        data / "snapshots" / f".s.json.tmp-{dead}-0a1b2c3d",
        data / "events" / f".s.jsonl.tmp-{dead}",
    ]
    live = data / "sessions" / f".x.json.tmp-{os.getpid()}-00000000"
    for path in (*stale, live):
        path.write_bytes(b'{"half":')
    async with agentstore.open(data, read_only=True) as reader:
        assert [s.id for s in await reader.list_sessions()] == ["s"]
        assert any(".tmp-" in note for note in (await reader.verify()).notes)
    assert all(p.exists() for p in stale)  # a reader changes nothing
    async with agentstore.open(data) as store:
        assert [s.id for s in await store.list_sessions()] == ["s"]
        assert (await store.verify()).ok
    assert not any(p.exists() for p in stale)
    assert live.exists()  # its writer may still be running


async def test_unparsable_snapshot_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data, snapshot_interval=5) as store:
        await store.create_session(session_id="s")
        for i in range(12):
            await store.append("s", new_event("custom", {"i": i}))
        expected = await store.get_state("s")
    snapshot = data / "snapshots" / "s.json"
    assert snapshot.exists()
    for bad in (b"", b"{", b"null", b'{"state": 1, "version": "x"}', os.urandom(64)):
        snapshot.write_bytes(bad)
        with caplog.at_level(logging.WARNING, logger="agentstore"):
            async with agentstore.open(data, snapshot_interval=5) as store:
                assert await store.get_state("s") == expected
                assert [p.kind for p in (await store.verify()).problems] == ["snapshot"]
    async with agentstore.open(data, snapshot_interval=5) as store:
        for i in range(12, 15):
            await store.append("s", new_event("custom", {"i": i}))
        # The next snapshot replaces the bad one.
        assert (await store.verify()).ok


async def test_snapshot_that_disagrees_with_the_events_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data, snapshot_interval=5) as store:
        await store.create_session(session_id="s")
        for i in range(6):
            await store.append("s", new_event("tool_called", {"i": i}))
    snapshot = data / "snapshots" / "s.json"
    snapshot.write_bytes(snapshot.read_bytes().replace(b'"tool_calls": 5', b'"tool_calls": 7'))
    async with agentstore.open(data, snapshot_interval=5) as store:
        report = await store.verify()
        assert [p.kind for p in report.problems] == ["snapshot"]
        assert "differs from a fold" in report.problems[0].message


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


async def test_unfinished_first_batch_leaves_an_empty_session(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        await store.create_session(session_id="s")
        await store.append_many("s", [new_event("custom", {"batch": i}) for i in range(3)])
    log = data / "events" / "s.jsonl"
    whole = log.read_bytes()
    log.write_bytes(whole[: whole.rindex(b"\n", 0, len(whole) - 1) + 1])  # two of three lines
    async with agentstore.open(data, read_only=True) as reader:
        assert await reader.get_events("s") == []
        assert (await reader.get_session("s")).event_count == 0
    async with agentstore.open(data) as store:
        assert await store.get_events("s") == []
        assert (await store.append("s", new_event("custom"))).sequence_number == 1
        assert (await store.verify()).ok
    assert log.read_bytes().count(b"\n") == 1


async def test_crash_inside_delete_leaves_an_invisible_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _make(data, 2)
    # A crash in delete_session after the session file was removed, before the log was.
    (data / "sessions" / "s.json").unlink()
    async with agentstore.open(data) as store:
        assert await store.list_sessions() == []
        report = await store.verify()
        assert report.ok and any("without a session file" in n for n in report.notes)
        await store.create_session(session_id="s")  # starts a new, empty log
        assert await store.get_events("s") == []
        assert (await store.verify()).ok


async def test_a_missing_log_is_corruption_everywhere(tmp_path: Path) -> None:
    """A log deleted under its session file: never an empty session restarting at 1."""
    data = tmp_path / "data"
    await _make(data, 2)
    log = data / "events" / "s.jsonl"
    log.unlink()
    for read_only in (False, True):
        async with agentstore.open(data, read_only=read_only) as store:
            for call in (
                store.get_session("s"),
                store.get_events("s"),
                store.get_state("s"),
            ):
                with pytest.raises(CorruptLogError, match="missing"):
                    await call
            report = await store.verify()
            assert [(p.kind, p.path) for p in report.problems] == [("missing_log", str(log))]
            if not read_only:
                with pytest.raises(CorruptLogError, match="missing"):
                    await store.append("s", new_event("custom"))
    assert not log.exists()  # never recreated


async def test_a_go_session_without_events_has_no_log_and_is_fine(tmp_path: Path) -> None:
    """The Go original creates a session's log with its first event."""
    data = tmp_path / "data"
    (data / "sessions").mkdir(parents=True)
    (data / "sessions" / "g.json").write_text(
        '{"id": "g", "name": "go", "created_at": "2026-11-20T10:00:00.123456789Z",'
        ' "updated_at": "2026-11-20T10:00:00.123456789Z", "event_count": 0}'
    )
    async with agentstore.open(data, read_only=True) as reader:
        assert (await reader.get_session("g")).event_count == 0
        assert (await reader.verify()).ok
    async with agentstore.open(data) as store:
        assert (await store.append("g", new_event("custom"))).sequence_number == 1
        assert (await store.verify()).ok


async def test_a_reader_sees_the_first_event_of_a_go_session_written_later(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "sessions").mkdir(parents=True)
    (data / "events").mkdir()
    (data / "sessions" / "g.json").write_text(
        '{"id": "g", "created_at": "2026-11-20T10:00:00Z", "event_count": 0}'
    )
    async with agentstore.open(data, read_only=True) as reader:
        assert await reader.get_events("g") == []
        async with agentstore.open(data) as writer:  # as the Go original would: a new log
            await writer.append("g", new_event("custom", {"first": True}))
        assert [e.payload for e in await reader.get_events("g")] == [{"first": True}]
        assert (await reader.get_state("g")).event_count == 1

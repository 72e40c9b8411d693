"""A CRC-32C on every line, and complete lines that are damaged: corruption, never a torn tail.

An acknowledged line ends with its newline. If such a line no longer checks out (a flipped
bit, a swap, a repeat), nothing may cut it, reuse its sequence number or write after it:
writers stop with `CorruptLogError` naming the file, and `verify` says where.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

import agentstore
from agentstore import CorruptLogError, new_event
from agentstore.codec import checksum_ok


async def _make(data: Path, count: int = 6) -> Path:
    async with agentstore.open(data, snapshot_interval=0) as store:
        await store.create_session(session_id="s")
        for i in range(count):
            await store.append("s", new_event("custom", {"i": i, "text": "some words"}))
    return data / "events" / "s.jsonl"


def _flip(log: Path, line_index: int, rng: random.Random) -> int:
    """Flip one bit inside the payload of a line; return the byte offset."""
    raw = bytearray(log.read_bytes())
    starts = [0, *(i + 1 for i, b in enumerate(raw) if b == ord("\n"))]
    start = starts[line_index]
    at = raw.index(b"some words", start) + rng.randrange(len("some words"))
    raw[at] ^= 1 << rng.randrange(7)
    log.write_bytes(bytes(raw))
    return at


async def test_every_line_carries_a_checksum_of_itself(tmp_path: Path) -> None:
    log = await _make(tmp_path)
    for line in log.read_bytes().splitlines():
        assert checksum_ok(line) is True
        assert list(orjson.loads(line))[-1] == "crc32c"


@pytest.mark.parametrize("line_index", [0, 2, 5])
async def test_a_changed_payload_is_found_with_its_file_and_line(
    tmp_path: Path, line_index: int
) -> None:
    log = await _make(tmp_path)
    rng = random.Random(line_index)
    _flip(log, line_index, rng)
    async with agentstore.open(tmp_path, read_only=True) as store:
        report = await store.verify()
        problem = report.problems[0]
        assert (problem.kind, problem.path, problem.line) == ("checksum", str(log), line_index + 1)
        # Damage at the very end is what stops writers: `verify --repair` can move it aside.
        tail = [(p.kind, p.line, p.repairable) for p in report.problems[1:]]
        assert tail == ([("damaged_tail", 6, True)] if line_index == 5 else [])
        with pytest.raises(CorruptLogError) as info:
            await store.get_events("s")
        assert info.value.line == line_index + 1 and str(log) in str(info.value)
        # A filtered read that would skip the line does not skip the damage.
        with pytest.raises(CorruptLogError):
            await store.replay("s", types=["llm_request"])


async def test_a_flipped_bit_in_the_last_line_stops_writers_until_repair(tmp_path: Path) -> None:
    log = await _make(tmp_path)
    good = log.read_bytes().splitlines(keepends=True)
    _flip(log, 5, random.Random(1))
    damaged = log.read_bytes()
    async with agentstore.open(tmp_path) as store:
        with pytest.raises(CorruptLogError, match="checksum"):
            await store.append("s", new_event("custom", {"after": True}))
        with pytest.raises(CorruptLogError):
            await store.get_state("s")
        report = await store.verify()
        assert [(p.kind, p.line) for p in report.problems] == [
            ("checksum", 6),
            ("damaged_tail", 6),
        ]
        # Nothing was quarantined, cut or written: sequence number 6 is not reused.
        assert log.read_bytes() == damaged
        assert not list((tmp_path / "events").glob("s.jsonl.torn-*"))
        # Until a human asks for the repair: the line moves aside, bytes kept.
        repaired = await store.verify(repair=True)
        assert repaired.ok, [str(p) for p in repaired.problems]
        [message] = repaired.repairs
        assert f"{log}:6: moved 1 damaged line(s)" in message
        [moved] = (tmp_path / "events").glob("s.jsonl.torn-*")
        assert moved.read_bytes() == damaged.splitlines(keepends=True)[5]
        assert log.read_bytes() == b"".join(good[:5])
        assert (await store.append("s", new_event("custom", {"after": True}))).sequence_number == 6


async def test_two_swapped_last_lines_stop_writers(tmp_path: Path) -> None:
    log = await _make(tmp_path)
    lines = log.read_bytes().splitlines(keepends=True)
    lines[-2], lines[-1] = lines[-1], lines[-2]
    log.write_bytes(b"".join(lines))
    async with agentstore.open(tmp_path) as store:
        with pytest.raises(CorruptLogError, match="sequence number 5 where 7 was expected"):
            await store.append("s", new_event("custom"))
        # Both lines are intact events: no repair cuts them; a human puts them back in order.
        report = await store.verify(repair=True)
        assert report.repairs == [] and not report.ok
        assert "damaged_tail" not in {p.kind for p in report.problems}
    assert log.read_bytes() == b"".join(lines)


async def test_a_repeated_last_line_stops_a_writer_that_reopens(tmp_path: Path) -> None:
    log = await _make(tmp_path)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([*lines, lines[-1]]))
    async with agentstore.open(tmp_path) as store:
        with pytest.raises(CorruptLogError, match="sequence number 6 where 7 was expected"):
            await store.append("s", new_event("custom"))
        assert log.read_bytes().count(b"\n") == 7
        # The repair moves only the repeat: the six acknowledged events stay.
        repaired = await store.verify(repair=True)
        assert repaired.ok and "moved 1 damaged line(s)" in repaired.repairs[0]
        assert log.read_bytes() == b"".join(lines)
        assert (await store.append("s", new_event("custom"))).sequence_number == 7


async def test_a_repeated_line_appended_under_a_running_writer_stops_it(tmp_path: Path) -> None:
    """Catch-up checks that the lines another process added run on from the last one."""
    log = await _make(tmp_path)
    async with agentstore.open(tmp_path) as store:
        assert (await store.append("s", new_event("custom"))).sequence_number == 7
        lines = log.read_bytes().splitlines(keepends=True)
        with log.open("ab") as handle:  # as a buggy writer would: sequence number 7 again
            handle.write(lines[-1])
        with pytest.raises(CorruptLogError, match="sequence number 7 where 8 was expected"):
            await store.append("s", new_event("custom"))
    seqs = [orjson.loads(line)["sequence_number"] for line in log.read_bytes().splitlines()]
    assert seqs == [1, 2, 3, 4, 5, 6, 7, 7]


async def test_damage_further_in_is_left_to_a_human(tmp_path: Path) -> None:
    log = await _make(tmp_path, count=20)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:10] + [b"garbage\n"] * 9 + lines[19:]))
    async with agentstore.open(tmp_path) as store:
        report = await store.verify(repair=True)
        assert report.repairs == [] and not report.ok
        assert "damaged_tail" not in {p.kind for p in report.problems}


async def test_lines_without_a_checksum_still_read(tmp_path: Path) -> None:
    """The Go original's lines (and agentstore's before checksums) have none."""
    log = await _make(tmp_path, count=3)
    plain = []
    for line in log.read_bytes().splitlines():
        obj = orjson.loads(line)
        del obj["crc32c"]
        plain.append(orjson.dumps(obj) + b"\n")
    log.write_bytes(b"".join(plain))
    async with agentstore.open(tmp_path) as store:
        assert [e.payload["i"] for e in await store.get_events("s")] == [0, 1, 2]
        assert (await store.append("s", new_event("custom"))).sequence_number == 4
        assert (await store.verify()).ok
    assert checksum_ok(log.read_bytes().splitlines()[-1]) is True

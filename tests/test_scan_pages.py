"""The file backend's scan: ranges, limits and checkpoints across chunks and decode pages."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.base import EventFilter
from agentstore.backends.file import lines as line_reader
from agentstore.backends.file import scan
from agentstore.backends.file.scan import CHECKPOINT_EVERY, DECODE_PAGE, scan_events
from agentstore.codec import decode_line

N = 2 * CHECKPOINT_EVERY + DECODE_PAGE + 37


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of N events (its lines of different lengths)."""
    import anyio

    root = tmp_path_factory.mktemp("scan")

    async def fill() -> str:
        async with agentstore.open(root, snapshot_interval=0, durability="flush") as store:
            sid = (await store.create_session()).id
            for start in range(0, N, 1000):
                await store.append_many(
                    sid,
                    [
                        new_event("tool_called", {"step": i, "pad": "x" * (i % 13)})
                        for i in range(start, min(N, start + 1000))
                    ],
                )
            return sid

    sid = anyio.run(fill)
    return root / "events" / f"{sid}.jsonl"


def _scan(log: Path, flt: EventFilter, checkpoints: dict[int, int]) -> list[int]:
    fd = os.open(log, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return [e.sequence_number for e in scan_events(fd, log, flt, size, checkpoints)]
    finally:
        os.close(fd)


@pytest.mark.parametrize("chunk", [line_reader.READ_CHUNK, 7_001, 300])
@pytest.mark.parametrize(
    ("from_seq", "to_seq", "limit"),
    [
        (0, None, None),
        (1, N, None),
        (CHECKPOINT_EVERY - 1, None, DECODE_PAGE + 3),
        (5, CHECKPOINT_EVERY + 1, None),
        (CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY, 10),
        (N - 3, None, 100),
        (N + 1, None, None),
        (50, 40, None),
        (1, None, 1),
    ],
)
def test_a_scan_returns_its_range_and_learns_true_checkpoints(
    log: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunk: int,
    from_seq: int,
    to_seq: int | None,
    limit: int | None,
) -> None:
    monkeypatch.setattr(line_reader, "READ_CHUNK", chunk)
    checkpoints: dict[int, int] = {}
    got = _scan(log, EventFilter(from_seq=from_seq, to_seq=to_seq, limit=limit), checkpoints)
    want = list(range(max(from_seq, 1), (to_seq if to_seq is not None else N) + 1))
    assert got == want[:limit]
    data = log.read_bytes()
    starts = [0, *[i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]]
    for seq, offset in checkpoints.items():
        assert offset == starts[seq - 1], seq
        assert decode_line(data[offset:].split(b"\n", 1)[0]).sequence_number == seq
    # Every multiple of CHECKPOINT_EVERY the scan went through is learnt.
    if got:
        passed = range(got[0], got[-1] + 1)
        assert {s for s in passed if s % CHECKPOINT_EVERY == 0} <= set(checkpoints)


def test_a_scan_from_learnt_checkpoints_gives_the_same_events(log: Path) -> None:
    checkpoints: dict[int, int] = {}
    everything = _scan(log, EventFilter(), checkpoints)
    assert everything == list(range(1, N + 1))
    assert sorted(checkpoints) == list(range(CHECKPOINT_EVERY, N + 1, CHECKPOINT_EVERY))
    for from_seq in (CHECKPOINT_EVERY, CHECKPOINT_EVERY + 1, 2 * CHECKPOINT_EVERY + 5):
        got = _scan(log, EventFilter(from_seq=from_seq, limit=3), dict(checkpoints))
        assert got == [from_seq, from_seq + 1, from_seq + 2]


def _damaged(log: Path, tmp_path: Path, faults: dict[int, bytes]) -> Path:
    """A copy of `log` with lines (by sequence number) replaced."""
    lines = log.read_bytes().split(b"\n")
    for seq, line in faults.items():
        lines[seq - 1] = line
    out = tmp_path / "damaged.jsonl"
    out.write_bytes(b"\n".join(lines))
    return out


Fault = Callable[[Path, int], bytes]
"""Makes a damaged line for a sequence number of the log."""


def _not_json(log: Path, seq: int) -> bytes:
    return b'{"id":"x","sequence_number":' + str(seq).encode() + b',"broken'


def _bad_checksum(log: Path, seq: int) -> bytes:
    return log.read_bytes().split(b"\n")[seq - 1].replace(b'"step":', b'"stop":')


def _bad_type(log: Path, seq: int) -> bytes:
    line = log.read_bytes().split(b"\n")[seq - 1]
    unchecked = line[: line.rindex(b',"crc32c":')] + b"}"  # no checksum, as the Go original
    return unchecked.replace(b'"type":"tool_called"', b'"type":"Not A Type"')


def _wrong_seq(log: Path, seq: int) -> bytes:
    return log.read_bytes().split(b"\n")[seq]  # the next line: sound, but one too far


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (_not_json, _bad_checksum),
        (_bad_checksum, _not_json),
        (_wrong_seq, _bad_checksum),
        (_bad_checksum, _wrong_seq),
        (_not_json, _not_json),
        (_bad_type, _wrong_seq),
        (_wrong_seq, _bad_type),
        (_bad_type, _not_json),
    ],
)
def test_the_first_damaged_line_of_a_page_is_the_one_reported(
    log: Path, tmp_path: Path, first: Fault, second: Fault
) -> None:
    at, later = CHECKPOINT_EVERY + 10, CHECKPOINT_EVERY + 20  # one decode page
    damaged = _damaged(log, tmp_path, {at: first(log, at), later: second(log, later)})
    with pytest.raises(agentstore.CorruptLogError) as info:
        _scan(damaged, EventFilter(), {})
    assert info.value.line == at
    with pytest.raises(agentstore.CorruptLogError) as alone:
        scan.decode_at(first(log, at), damaged, at)
    assert str(info.value) == str(alone.value)
    # The lines before it are read: a range that stops short of it has no error.
    assert _scan(damaged, EventFilter(to_seq=at - 1), {}) == list(range(1, at))

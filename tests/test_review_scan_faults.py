"""Review of the file scan's page decoder: any damage gives what line-by-line decoding gives.

`_decode_page` decodes a page in three passes (checksums, JSON parsing, checks and
decoding) for speed; it promises the same result as `decode_at` on each line in order:
the same events, or the same `CorruptLogError` (message and line) for the first faulty
line. This test damages random lines of a real log in many ways, several per page, and
compares the two, through the private decoder and through a real read.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import agentstore
from agentstore import Metadata, new_event
from agentstore.backends.file import scan
from agentstore.errors import CorruptLogError

PAGE = 60


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The lines of a real log of PAGE events (some with metadata, some without)."""
    root = tmp_path_factory.mktemp("faults")

    async def fill() -> str:
        async with agentstore.open(root, snapshot_interval=0) as store:
            sid = (await store.create_session()).id
            await store.append_many(
                sid,
                [
                    new_event("tool_called", {"i": i}, Metadata(tokens_in=i) if i % 3 else None)
                    for i in range(PAGE)
                ],
            )
            return sid

    sid = anyio.run(fill)
    return (root / "events" / f"{sid}.jsonl").read_bytes().split(b"\n")[:-1]


def _unchecked(line: bytes) -> bytes:
    """The line without its checksum field (as the Go original writes it)."""
    return line[: line.rindex(b',"crc32c":')] + b"}"


Damage = Callable[[bytes, list[bytes], int], bytes]

DAMAGES: dict[str, Damage] = {
    "flipped byte": lambda line, _all, _i: line.replace(b'"i":', b'"j":'),
    "bad crc hex": lambda line, _all, _i: line[:-10] + b'zzzzzzzz"}',
    "crc of another": lambda line, _all, _i: line[:-10] + _all[0][-10:],
    "torn": lambda line, _all, _i: line[: len(line) // 2],
    "empty": lambda _line, _all, _i: b"",
    "array": lambda _line, _all, _i: b"[1,2]",
    "string": lambda _line, _all, _i: b'"event"',
    "null": lambda _line, _all, _i: b"null",
    "next line": lambda _line, all_, i: all_[(i + 1) % len(all_)],
    "seq as text": lambda line, _all, i: _unchecked(line).replace(
        b'"sequence_number":%d' % (i + 1), b'"sequence_number":"%d"' % (i + 1)
    ),
    "seq as float": lambda line, _all, i: _unchecked(line).replace(
        b'"sequence_number":%d' % (i + 1), b'"sequence_number":%d.0' % (i + 1)
    ),
    "bad type": lambda line, _all, _i: _unchecked(line).replace(b"tool_called", b"Bad Type"),
    "bad time": lambda line, _all, _i: _unchecked(line).replace(
        b'"timestamp":"2', b'"timestamp":"x'
    ),
    "no session": lambda line, _all, _i: _unchecked(line).replace(b'"session_id"', b'"sess"'),
    "bad metadata": lambda line, _all, _i: _unchecked(line).replace(
        b'"metadata":{', b'"metadata":{"tokens_out":-5,'
    ),
    "metadata list": lambda line, _all, _i: (
        _unchecked(line).replace(b'"metadata":{', b'"metadata":[{').replace(b"}}", b"}]}")
    ),
    "unchecked, sound": lambda line, _all, _i: _unchecked(line),
    "trailing space": lambda line, _all, _i: line + b" ",
    "bad utf-8": lambda line, _all, _i: line.replace(b"tool_called", b"tool_\xffalled"),
}


def _line_by_line(lines: list[bytes], path: Path) -> list[bytes] | tuple[str, int | None]:
    try:
        return [scan.decode_at(line, path, seq).to_json() for seq, line in enumerate(lines, 1)]
    except CorruptLogError as exc:
        return str(exc), exc.line


def _paged(lines: list[bytes], path: Path) -> list[bytes] | tuple[str, int | None]:
    try:
        return [e.to_json() for e in scan._decode_page(lines, 0, len(lines), 0, path)]
    except CorruptLogError as exc:
        return str(exc), exc.line


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_each_damage_alone_anywhere(lines: list[bytes], tmp_path: Path, name: str) -> None:
    path = tmp_path / "log.jsonl"
    for at in (0, 1, PAGE // 2, PAGE - 1):
        damaged = list(lines)
        damaged[at] = DAMAGES[name](lines[at], lines, at)
        assert _paged(damaged, path) == _line_by_line(damaged, path), (name, at)


def test_random_damage_several_per_page(lines: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    rng = random.Random(17)
    names = sorted(DAMAGES)
    for _ in range(400):
        damaged = list(lines)
        for at in rng.sample(range(PAGE), rng.randrange(1, 4)):
            damaged[at] = DAMAGES[rng.choice(names)](lines[at], lines, at)
        assert _paged(damaged, path) == _line_by_line(damaged, path)


def test_a_damaged_log_read_through_the_store_reports_the_first_fault(tmp_path: Path) -> None:
    async def run() -> None:
        async with agentstore.open(tmp_path, snapshot_interval=0) as store:
            sid = (await store.create_session()).id
            await store.append_many(sid, [new_event("custom", {"i": i}) for i in range(50)])
        log = tmp_path / "events" / f"{sid}.jsonl"
        all_lines = log.read_bytes().split(b"\n")
        all_lines[29] = DAMAGES["seq as text"](all_lines[29], all_lines, 29)
        all_lines[9] = DAMAGES["flipped byte"](all_lines[9], all_lines, 9)
        log.write_bytes(b"\n".join(all_lines))
        async with agentstore.open(tmp_path, snapshot_interval=0) as store:
            with pytest.raises(CorruptLogError) as info:
                await store.replay(sid)
            assert info.value.line == 10
            assert len(await store.replay(sid, to_seq=9)) == 9  # the lines before it read

    anyio.run(run)

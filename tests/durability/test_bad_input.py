"""Bad input: each gets the store's own error, or a documented lossless result.

Never a corrupt log, never a file outside the data directory.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

import agentstore
from agentstore import (
    InvalidEventError,
    InvalidInputError,
    InvalidSessionIdError,
    Metadata,
    new_event,
)
from agentstore.backends.file import group as file_group

BAD_SESSION_IDS = [
    "",
    ".",
    "..",
    "../escape",
    "a/../../escape",
    "a/b",
    "a\\b",
    "/etc/passwd",
    "/tmp/escape",
    "a\0b",
    "\0",
    "a\u2215b",  # DIVISION SLASH
    "a\u2044b",  # FRACTION SLASH
    "a\uff0fb",  # FULLWIDTH SOLIDUS
    "\uff0e\uff0e",  # FULLWIDTH FULL STOPs
    "a\u2024\u2024b",  # ONE DOT LEADERs
    "caf\u00e9",
    "a b",
    "a\nb",
    "-rf",
    ".hidden",
    "x" * 129,
    "x" * 100_000,
    "a..b",
]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    async with agentstore.open(tmp_path / "data") as opened:
        await opened.create_session(session_id="ok")
        await opened.append("ok", new_event("custom", {"i": 0}))
        yield opened


@pytest.mark.parametrize("bad", BAD_SESSION_IDS, ids=lambda s: repr(s)[:30])
async def test_bad_session_ids_are_refused_everywhere(
    store: agentstore.Store, tmp_path: Path, bad: str
) -> None:
    before = _files(tmp_path)
    event = new_event("custom", {"x": 1})
    calls = [
        lambda: store.create_session(session_id=bad),
        lambda: store.get_session(bad),
        lambda: store.append(bad, event),
        lambda: store.append_many(bad, [event]),
        lambda: store.get_events(bad),
        lambda: store.get_state(bad),
        lambda: store.replay(bad),
        lambda: store.delete_session(bad),
        lambda: store.fork(bad, at_seq=0),
        lambda: store.verify(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidSessionIdError):
            await call()
    assert _files(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["data"]


@pytest.mark.parametrize(
    "payload",
    [
        math.nan,
        math.inf,
        -math.inf,
        {"a": [1, 2, {"b": math.nan}]},
        "\ud800",
        {"\udfff": 1},
        ["ok", "\ud83d"],
        {1: "int key"},
        2**64,
        object(),
        {"set": {1, 2}},
    ],
    ids=[
        "nan",
        "inf",
        "-inf",
        "nested-nan",
        "lone-surrogate",
        "surrogate-key",
        "half-emoji",
        "int-key",
        "too-big-int",
        "object",
        "set",
    ],
)
async def test_unrepresentable_payloads_are_refused(
    store: agentstore.Store, tmp_path: Path, payload: Any
) -> None:
    before = _files(tmp_path)
    with pytest.raises(InvalidEventError):
        await store.append("ok", new_event("custom", payload))
    with pytest.raises(InvalidEventError):
        await store.append_many(
            "ok", [new_event("custom", {"fine": 1}), new_event("custom", payload)]
        )
    assert _files(tmp_path) == before
    assert (await store.verify()).ok


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


async def test_nesting_up_to_the_encoders_limit_round_trips(
    store: agentstore.Store, tmp_path: Path
) -> None:
    # orjson writes 254 levels; an event's JSON holds its payload one level down and a
    # state's JSON two, so 252 is the deepest payload every read can write out again.
    deepest = _nested(252)
    stored = await store.append("ok", new_event("custom", deepest))
    before = _files(tmp_path)
    for depth in (253, 254, 255, 10_000):
        with pytest.raises(InvalidEventError, match="nested more than 252 levels"):
            await store.append("ok", new_event("custom", _nested(depth)))
    assert _files(tmp_path) == before
    async with agentstore.open(tmp_path / "data") as fresh:
        [read] = await fresh.get_events("ok", from_seq=stored.sequence_number)
        assert read.payload == deepest
        assert orjson.loads(read.to_json())["payload"] == deepest
        orjson.dumps((await fresh.get_state("ok")).model_dump(mode="json"))
        assert (await fresh.verify()).ok


async def test_ten_mebibyte_payload_round_trips(store: agentstore.Store, tmp_path: Path) -> None:
    big = {"blob": os.urandom(5 * 1024 * 1024).hex(), "unicode": "\u00e9\u4e2d\U0001f600" * 1000}
    stored = await store.append("ok", new_event("custom", big))
    await store.append("ok", new_event("custom", {"after": True}))
    async with agentstore.open(tmp_path / "data") as fresh:
        events = await fresh.get_events("ok")
        assert events[stored.sequence_number - 1].payload == big
        assert (await fresh.get_state("ok")).event_count == 3
        assert (await fresh.verify()).ok
    # One line per event: `cat`/`jq` see a 10 MiB line, not a broken log.
    assert (tmp_path / "data" / "events" / "ok.jsonl").read_bytes().count(b"\n") == 3


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Cache_Hit",
        "cache-hit",
        "1st",
        "_private",
        "a" * 65,
        "caf\u00e9",
        'x","payload":1,"y":"',
        "tool_called\n",
        "a b",
        None,
        5,
    ],
)
async def test_bad_custom_type_names(store: agentstore.Store, tmp_path: Path, name: Any) -> None:
    before = _files(tmp_path)
    with pytest.raises(InvalidEventError):
        await store.append("ok", new_event(name))
    assert _files(tmp_path) == before


@pytest.mark.parametrize("name", ["cache_hit", "a", "a" * 64, "x1_2"])
async def test_good_custom_type_names(store: agentstore.Store, name: str) -> None:
    stored = await store.append("ok", new_event(name, {"n": name}))
    [read] = await store.replay("ok", types=[name])
    assert (read.type, read.payload) == (name, {"n": name}) == (stored.type, stored.payload)


@pytest.mark.parametrize(
    "timestamp",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2020, 1, 1),  # naive
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=-11))),
    ],
    ids=["epoch", "far-future", "naive", "offset"],
)
async def test_caller_timestamps_are_replaced_by_the_store(
    store: agentstore.Store, timestamp: datetime
) -> None:
    """Documented: the store assigns every timestamp (UTC, never going backwards)."""
    before = datetime.now(UTC)
    event = new_event("custom", {"t": 1})
    event.timestamp = timestamp
    stored = await store.append("ok", event)
    assert stored.timestamp is not None and stored.timestamp >= before
    assert stored.timestamp.utcoffset() == timedelta(0)
    assert (await store.verify()).ok


async def test_clock_going_backwards_never_breaks_the_order(
    store: agentstore.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await store.append("ok", new_event("custom", {"i": 1}))
    assert first.timestamp is not None

    class Yesterday(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) - timedelta(days=1)

    monkeypatch.setattr(file_group, "datetime", Yesterday)
    second = await store.append("ok", new_event("custom", {"i": 2}))
    assert second.timestamp == first.timestamp  # clamped, not earlier
    assert (await store.verify()).ok


async def test_naive_time_filters_are_refused(store: agentstore.Store) -> None:
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        await store.replay("ok", since=datetime(2020, 1, 1))


async def test_bad_metadata_is_refused(store: agentstore.Store, tmp_path: Path) -> None:
    before = _files(tmp_path)
    with pytest.raises(InvalidEventError):
        new_event("custom").with_metadata(tokens_in=-1)
    with pytest.raises(InvalidEventError):
        new_event("custom").with_metadata(cost_usd=math.nan)
    with pytest.raises(InvalidEventError):
        await store.append("ok", new_event("custom", metadata=Metadata(worker_id="\ud800")))
    assert _files(tmp_path) == before


async def test_event_ids(store: agentstore.Store, tmp_path: Path) -> None:
    before = _files(tmp_path)
    for bad in ("", "x" * 129):
        event = new_event("custom")
        object.__setattr__(event, "id", bad)  # bypass the model's own validation
        with pytest.raises(InvalidEventError):
            await store.append("ok", event)
    assert _files(tmp_path) == before
    # Any other string is a fine id, and stored as given (quotes, slashes, unicode).
    for odd in ('"quoted"', "../../etc/passwd", "\u00e9\u4e2d", "a\nb"):
        event = new_event("custom")
        object.__setattr__(event, "id", odd)
        assert (await store.append("ok", event)).id == odd
    async with agentstore.open(tmp_path / "data") as fresh:
        ids = [e.id for e in await fresh.get_events("ok")]
        assert ids[-4:] == ['"quoted"', "../../etc/passwd", "\u00e9\u4e2d", "a\nb"]
        assert (await fresh.verify()).ok


async def test_nan_in_extra_metadata_is_refused(store: agentstore.Store) -> None:
    with pytest.raises(InvalidEventError):
        await store.append("ok", new_event("custom", metadata=Metadata(**{"ratio": math.nan})))

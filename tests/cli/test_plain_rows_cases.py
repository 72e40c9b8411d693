"""The pipe timeline's per-type summaries (`plainrows.py`) say exactly what the styled
rows say, for every event type and for payloads of every shape a log can hold: hostile
text, wide and combining characters, long values, missing names, timestamps and calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentstore import Event, EventType, Metadata
from agentstore.events import build_event
from agentstore_cli.payloadtext import json_preview, text_of
from agentstore_cli.render import Timeline
from agentstore_cli.rowtext import _narrow_characters, narrow_only

START = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
HOSTILE = "\x1b[2J\x1b]0;pwned\x07 ok\rFORGED \x9b31m \u202eevil\u202c \x00\x7f\u200b\ufeff end"
WIDE = "東京 \uff57\uff49\uff44\uff45 👍 e\u0301 한국어"  # fullwidth "wide"
LONG = "word " * 300

# (type, payload, metadata, seconds after START or None for no timestamp)
Spec = tuple[str, Any, Metadata, float | None]


def _messages() -> list[Spec]:
    kind = EventType.USER_MESSAGE
    payloads: list[Any] = [
        {"content": "plain"},
        {"content": ""},
        {"content": "", "message": "from message"},
        {"content": None, "text": HOSTILE},
        {"content": 42},
        {"content": ["a", 1]},
        {"content": [{"role": "user", "content": WIDE}]},
        {"content": [{"role": "user"}]},
        {"content": {"nested": HOSTILE}},
        {"content": "x" * 400},
        {"content": "x" * 401},
        {"content": LONG},
        {"content": "tab\there"},
        {"prompt": "only a prompt"},
        {"other": 1},
        {},
        HOSTILE,
        WIDE,
        "",
        None,
        [1, 2, 3],
        7,
        True,
    ]
    return [(kind, payload, Metadata(), 0.5) for payload in payloads]


def _tool_calls() -> list[Spec]:
    called, result = EventType.TOOL_CALLED, EventType.TOOL_RESULT
    return [
        (called, {"tool": "search", "args": {"to": "MUC", "n": 2}}, Metadata(call_id="a"), 1),
        (result, {"result": [1, 2]}, Metadata(call_id="a"), 1.25),
        (called, {"args": {"q": HOSTILE}}, Metadata(call_id="b", tool_name=HOSTILE), 2),
        (result, {"error": HOSTILE}, Metadata(call_id="b"), None),  # a call, no duration
        (called, {"name": WIDE, "arguments": [1, "two"]}, Metadata(call_id="c"), None),
        (result, {"output": {"flights": [1, 2, 3]}}, Metadata(call_id="c"), 3),  # call: no ts
        (called, {"tool_name": "t", "q": "rest of the payload", "n": None}, Metadata(), 4),
        (called, {"tool": "", "input": "a string"}, Metadata(tool_name=""), 5),
        (called, {"tool": 7, "params": {"k" * 100: LONG}}, Metadata(call_id="d"), 6),
        (called, "not a dict", Metadata(call_id="e", tool_name="s"), 7),
        (called, None, Metadata(), 8),
        (result, {"tool": "late", "results": [], "extra": 1}, Metadata(call_id="d"), 9.5),
        (result, {"data": {"a": [1], "b": [2]}}, Metadata(duration_ms=0), 10),
        (result, {"result": {"rows": ["x"] * 5000}}, Metadata(duration_ms=61_000), 11),
        (result, [1, 2, 3], Metadata(call_id="e", duration_ms=1), 12),
        (result, "bare text", Metadata(call_id="unknown"), 13),
        (result, None, Metadata(tool_name=WIDE), 14),
        (result, {"error": "", "result": HOSTILE}, Metadata(), 15),
        (result, {"error": {"code": 5}}, Metadata(call_id="a"), 16),  # answered already
        (result, {"error": False, "result": 1}, Metadata(), 17),  # present, though falsy
        (result, {"error": 0, "output": []}, Metadata(), 18),
        (result, {"error": [], "results": {}}, Metadata(), 19),
    ]


def _llm_calls() -> list[Spec]:
    req, resp = EventType.LLM_REQUEST, EventType.LLM_RESPONSE
    return [
        (req, {"model": "gpt-4o", "messages": [{"content": WIDE}]}, Metadata(call_id="m"), 20),
        (resp, {"content": "hi"}, Metadata(call_id="m", tokens_in=1200, tokens_out=3), 21.5),
        (req, {"prompt": HOSTILE}, Metadata(call_id="n", model=HOSTILE, tokens_in=5), 70),
        (resp, {"text": ""}, Metadata(call_id="n", cost_usd=0.00001), 75),
        (req, {"input": LONG}, Metadata(), 80),
        (resp, {}, Metadata(), 81),
        (resp, None, Metadata(model="m", cost_usd=12345.678), 82),
        (resp, {"output": [1, 2]}, Metadata(tokens_out=0, cost_usd=0.0), 83),
        (resp, {"message": "x"}, Metadata(call_id="gone", duration_ms=5), 84),
        (resp, {"model": 3, "content": "numeric model"}, Metadata(), 85),
        (req, "bare prompt", Metadata(call_id="p"), None),
        (resp, "bare answer", Metadata(call_id="p"), 3700),
        (req, {"model": "", "content": ""}, Metadata(call_id="q"), 3800),
        (resp, {"content": "fast"}, Metadata(call_id="q", duration_ms=0), 3800),
    ]


def _others() -> list[Spec]:
    return [
        (EventType.PLAN_CREATED, {"goal": HOSTILE, "steps": [{"name": "a"}, "b"]}, Metadata(), 30),
        (EventType.PLAN_CREATED, {"plan": ["one"]}, Metadata(), 31),
        (
            EventType.ERROR,
            {"type": "Timeout", "message": WIDE, "recoverable": True},
            Metadata(),
            32,
        ),
        (EventType.ERROR, {"error": HOSTILE}, Metadata(call_id="d"), 33),
        (EventType.ERROR, "bare error", Metadata(), None),
        (EventType.STATE_UPDATED, {"k": WIDE * 20}, Metadata(), 34),
        (EventType.CUSTOM, None, Metadata(), 35),
        ("cache_hit", {"key": HOSTILE}, Metadata(), 36),
        ("a_very_long_custom_type_name", ["x" * 300], Metadata(), 37),
    ]


def _events(specs: list[Spec], *, first_seq: int = 1) -> list[Event]:
    return [
        build_event(
            f"e{i}",
            "s",
            first_seq + i,
            kind,
            payload,
            START + timedelta(seconds=at) if at is not None else None,
            meta,
        )
        for i, (kind, payload, meta, at) in enumerate(specs)
    ]


ALL = _messages() + _tool_calls() + _llm_calls() + _others()


def _styled(events: list[Event], width: int) -> tuple[str, Timeline]:
    timeline = Timeline(seq_width=4)
    rows = []
    for event in events:
        row = timeline.row(event)
        row.truncate(width, overflow="ellipsis")
        rows.append(row.plain + "\n")
    return "".join(rows), timeline


@pytest.mark.parametrize("width", [1, 12, 30, 41, 60, 80, 100, 200, 2000])
def test_every_type_and_payload_shape_reads_as_the_styled_row(width: int) -> None:
    events = _events(ALL)
    styled, by_rich = _styled(events, width)
    one = Timeline(seq_width=4)
    for event, expected in zip(events, styled.splitlines(keepends=True), strict=True):
        assert one.row_plain(event, width) + "\n" == expected, event
    page = Timeline(seq_width=4)
    assert page.rows_plain(events, width) == styled
    for plain in (one, page):
        assert (
            plain.footer(len(events), open_calls=True).plain
            == by_rich.footer(len(events), open_calls=True).plain
        )
        assert plain.open_calls() == by_rich.open_calls()
        assert (plain.first_ts, plain.last_ts) == (by_rich.first_ts, by_rich.last_ts)


def test_pages_carry_calls_times_and_totals_across() -> None:
    # A call in one page and its result in the next; the first timestamp is in page one.
    events = _events(ALL)
    styled, by_rich = _styled(events, 100)
    timeline = Timeline(seq_width=4)
    pages = [events[i : i + 7] for i in range(0, len(events), 7)]
    assert "".join(timeline.rows_plain(page, 100) for page in pages) == styled
    assert timeline.footer(len(events)).plain == by_rich.footer(len(events)).plain
    assert timeline.cost_usd == by_rich.cost_usd  # summed in the same order, to the bit


def test_no_timestamp_first_then_times_count_from_the_first_one_shown() -> None:
    specs: list[Spec] = [
        (EventType.USER_MESSAGE, "none yet", Metadata(), None),
        (EventType.USER_MESSAGE, "first", Metadata(), 5),
        (EventType.USER_MESSAGE, "same instant", Metadata(), 5),
        (EventType.USER_MESSAGE, "earlier than the first", Metadata(), 1),
        (EventType.USER_MESSAGE, "later", Metadata(), 5 + 10.5),
        (EventType.USER_MESSAGE, "a minute on", Metadata(), 5 + 61),
    ]
    events = _events(specs, first_seq=123_456)  # wider than the sequence column
    rows = Timeline(seq_width=4).rows_plain(events, 80).splitlines()
    assert [row.split()[1] for row in rows] == [
        "+0.000s",
        "+0.000s",
        "+0.000s",
        "+0.000s",
        "+10.50s",
        "+1m01s",
    ]
    assert rows == _styled(events, 80)[0].splitlines()


def test_hostile_text_never_reaches_the_pipe_raw() -> None:
    text = Timeline().rows_plain(_events(ALL), 2000)
    for raw in ("\x1b", "\r", "\x07", "\x9b", "\u202e", "\x00", "\x7f", "\u200b", "\ufeff"):
        assert raw not in text
    assert "\\x1b[2J" in text and "\\u202e" in text


def test_calls_and_results_pair_up_in_the_text() -> None:
    events = _events(_tool_calls()[:2] + _llm_calls()[:2] + _tool_calls()[12:13])
    assert Timeline(seq_width=3).rows_plain(events, 120).splitlines() == [
        '  1   +0.000s  tool_called    search(to="MUC", n=2)',
        "  2   +0.250s  tool_result    search → 2 items, 16 B, in 250ms, call #1 · [1,2]",
        f"  3   +19.00s  llm_request    gpt-4o · {WIDE}",
        "  4   +20.50s  llm_response   gpt-4o · 1,200 in · 3 out · in 1.50s · hi",
        '  5   +9.000s  tool_result    ? → 26 B, in 0ms · {"data":{"a":[1],"b":[2]}}',
    ]


def test_narrow_only_is_the_set_of_one_cell_characters() -> None:
    # The pattern that stands in for the set, over the whole Basic Multilingual Plane.
    narrow = _narrow_characters()
    for code in range(0x10000):
        assert narrow_only(chr(code)) is (chr(code) in narrow), hex(code)
    assert narrow_only("a → b · c … d") and not narrow_only("a 東 b")
    assert not narrow_only("\U0001f44d") and narrow_only("")


def test_json_preview_quotes_strings_and_cuts_to_the_limit() -> None:
    assert json_preview("MUC", 80) == '"MUC"'
    assert json_preview({"a": [1, None]}, 80) == '{"a":[1,null]}'
    assert json_preview("x" * 100, 10) == '"xxxxxxxx…'
    assert json_preview("\x1b[2J", 80) == '"\\u001b[2J"'  # JSON's own escape
    assert json_preview("\u202e", 80) == '"\\u202e"'  # not escaped by JSON: by clean
    assert json_preview({1, 2}, 80) in ("{1, 2}", "{2, 1}")  # not JSON: its repr


@pytest.mark.parametrize(
    ("payload", "keys", "expected"),
    [
        ({"content": "hi"}, ("content", "text"), "hi"),
        ({"content": "", "text": "second"}, ("content", "text"), "second"),
        ({"content": None, "text": "\x1b[2J"}, ("content", "text"), "\\x1b[2J"),
        ({"content": 42, "text": "not this"}, ("content", "text"), "42"),
        ({"content": [{"content": "last"}]}, ("content",), "last"),
        ({"content": [{"role": "user"}]}, ("content",), '{"role":"user"}'),
        ({"content": ["a", 1]}, ("content",), '["a",1]'),
        ({"content": "x" * 400}, ("content",), "x" * 400),
        ({"content": "x" * 401}, ("content",), "x" * 399 + "…"),
        ({"other": 1}, ("content",), '{"other":1}'),
        ({}, ("content",), "{}"),
        ("bare \u202e", ("content",), "bare \\u202e"),
        (None, ("content",), ""),
        ([1, 2], ("content",), "[1,2]"),
    ],
)
def test_text_of_takes_the_first_key_present(
    payload: Any, keys: tuple[str, ...], expected: str
) -> None:
    assert text_of(payload, *keys) == expected


# --- generated sessions: any payload, metadata and timing the log can hold -----------------

_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from("→·…東👍\x1b\r\t\u202e"),
    max_size=30,
)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "content",
        "message",
        "text",
        "prompt",
        "messages",
        "input",
        "output",
        "tool",
        "tool_name",
        "name",
        "args",
        "arguments",
        "params",
        "result",
        "results",
        "data",
        "error",
        "model",
        "goal",
        "steps",
        "type",
        "recoverable",
    ]
)
_payloads = _json | st.dictionaries(_keys, _json, max_size=5)
_call_ids = st.none() | st.sampled_from(["a", "b", "c"])
_counts = st.none() | st.integers(0, 10**7)
_metadata = st.builds(
    Metadata,
    call_id=_call_ids,
    tool_name=st.none() | _text,
    model=st.none() | _text,
    tokens_in=_counts,
    tokens_out=_counts,
    duration_ms=_counts,
    cost_usd=st.none() | st.floats(0, 1000, allow_nan=False),
)
_specs = st.lists(
    st.tuples(
        st.sampled_from([*EventType, "cache_hit"]),
        _payloads,
        _metadata,
        st.none() | st.floats(0, 10_000, allow_nan=False),
    ),
    max_size=12,
)


@settings(max_examples=300)
@given(_specs, st.integers(1, 160))
def test_generated_sessions_read_as_the_styled_rows(specs: list[Spec], width: int) -> None:
    events = _events(specs)
    styled, by_rich = _styled(events, width)
    plain = Timeline(seq_width=4)
    assert plain.rows_plain(events, width) == styled
    assert (
        plain.footer(len(events), open_calls=True).plain
        == by_rich.footer(len(events), open_calls=True).plain
    )

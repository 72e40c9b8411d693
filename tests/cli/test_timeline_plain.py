"""The timeline in a pipe (text rows, no Rich renderable per event) shows exactly what
the styled rows show, cut to the same width, with the same totals; pages of events are
read with the cyclic garbage collector paused, and it is restored after."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest
from rich.text import Text

import agentstore
from agentstore import Event, EventType, Metadata, Store
from agentstore.backends.base import EventFilter
from agentstore.backends.memory import MemoryBackend
from agentstore.events import build_event
from agentstore_cli.events_iter import EventQuery, iter_events
from agentstore_cli.render import Timeline, fit


def _events() -> list[Event]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    specs: list[tuple[str, object, Metadata]] = [
        (EventType.USER_MESSAGE, {"content": "book a flight to 東京 please " * 3}, Metadata()),
        (EventType.PLAN_CREATED, {"goal": "fly", "steps": [{"name": "search"}, "pay"]}, Metadata()),
        (
            EventType.TOOL_CALLED,
            {"tool": "search", "args": {"to": "MUC", "n": 2}},
            Metadata(call_id="c1", tool_name="search"),
        ),
        (
            EventType.TOOL_RESULT,
            {"result": [{"f": 1}, {"f": 2}]},
            Metadata(call_id="c1", tool_name="search"),
        ),
        (
            EventType.LLM_REQUEST,
            {"messages": [{"role": "user", "content": "hi\x1b[31m red"}]},
            Metadata(call_id="m1", model="gpt-4o", tokens_in=1200),
        ),
        (
            EventType.LLM_RESPONSE,
            {"content": "ok [red]not markup[/red]"},
            Metadata(call_id="m1", model="gpt-4o", tokens_in=1200, tokens_out=40, cost_usd=0.01),
        ),
        (EventType.ERROR, {"type": "Timeout", "message": "slow", "recoverable": True}, Metadata()),
        (EventType.TOOL_RESULT, {"error": "boom"}, Metadata(duration_ms=12)),
        ("a_very_long_custom_type_name", ["x" * 300], Metadata()),
        (EventType.CUSTOM, None, Metadata()),
        (EventType.STATE_UPDATED, "\uff57\uff49\uff44\uff45 wide " * 20, Metadata()),
    ]
    return [
        build_event(f"e{i}", "s", i + 1, kind, payload, start + timedelta(seconds=i * 7), meta)
        for i, (kind, payload, meta) in enumerate(specs)
    ]


@pytest.mark.parametrize("width", [20, 40, 80, 200])
def test_plain_rows_are_the_styled_rows_text(width: int) -> None:
    styled, plain = Timeline(seq_width=4), Timeline(seq_width=4)
    for event in _events():
        row = styled.row(event)
        row.truncate(width, overflow="ellipsis")
        assert plain.row_plain(event, width) == row.plain
    assert plain.footer(11).plain == styled.footer(11).plain
    assert plain.open_calls() == styled.open_calls()


def test_fit_cuts_to_cells_like_rich() -> None:
    for line in ("plain ascii line", "東京東京東京東京", "mixed 東京 text", "a → b · c … d"):
        for width in (1, 5, 9, 16, 40):
            text = Text(line)
            text.truncate(width, overflow="ellipsis")
            assert fit(line, width) == text.plain


def test_the_timeline_is_public_helpers_only() -> None:
    # The CLI renders stored events: its inputs are what agentstore hands back.
    assert isinstance(_events()[0], agentstore.Event)


class _SpyRead(MemoryBackend):
    """Records whether the cyclic collector ran while each page was read."""

    def __init__(self) -> None:
        super().__init__()
        self.collector_on: list[bool] = []

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        self.collector_on.append(gc.isenabled())
        return await super().read(session_id, flt)


@pytest.mark.parametrize("enabled", [True, False])
async def test_pages_are_read_with_the_collector_paused_and_restored(enabled: bool) -> None:
    backend = _SpyRead()
    # No snapshots: the store's background snapshot reads are not the timeline's pages.
    async with Store(backend, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [agentstore.new_event("step") for _ in range(2500)])
        was = gc.isenabled()
        backend.collector_on.clear()
        try:
            if not enabled:
                gc.disable()
            seen = [e.sequence_number async for e in iter_events(store, sid, EventQuery())]
            assert gc.isenabled() is enabled
        finally:
            if was:
                gc.enable()
    assert seen == list(range(1, 2501))
    assert backend.collector_on == [False, False, False]

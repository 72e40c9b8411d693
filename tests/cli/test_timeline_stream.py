"""The timeline in a pipe is plain text written page by page as the log is read.

Exact rows for a few events (no ANSI codes, escapes for control characters), and the
streaming itself: the first rows reach the output while most of the log is still unread.
"""

from __future__ import annotations

import gc
import io
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from typer.testing import Result

import agentstore
from agentstore import Event, Metadata, Store
from agentstore.backends.base import EventFilter
from agentstore.backends.memory import MemoryBackend
from agentstore.events import build_event
from agentstore_cli.events_iter import PAGE, EventQuery, iter_events
from agentstore_cli.render import Timeline
from agentstore_cli.replay import _timeline
from tests.cli.conftest import seed_session

Cli = Callable[..., Result]
START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class _CountingReads(MemoryBackend):
    """Counts the pages the store reads, so a test can see when each write happened."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        self.reads += 1
        return await super().read(session_id, flt)


class _Recorder(io.StringIO):
    """A pipe-like output that notes how many pages had been read at each write."""

    def __init__(self, backend: _CountingReads) -> None:
        super().__init__()
        self.backend = backend
        self.writes: list[tuple[int, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((self.backend.reads, text))
        return super().write(text)


def test_rows_are_exact_plain_text(cli: Cli, data_dir: Path) -> None:
    seed_session(
        data_dir,
        [
            ("user_message", {"content": "hi \x1b[2J there"}, {}, 0),
            ("tool_called", {"tool": "search", "args": {"q": "BER"}}, {"call_id": "c1"}, 10),
            ("tool_result", {"result": [1, 2]}, {"call_id": "c1", "tool_name": "search"}, 60),
            ("cache_hit", {"key": "k\u202e"}, {}, 12_500),
        ],
        session_id="few",
    )
    out = cli("replay", "few").stdout
    assert "\x1b" not in out  # no colour in a pipe, and the payload's ESC is escaped
    rows = out.splitlines()[1:5]
    assert rows == [
        "  1   +0.000s  user_message   hi \\x1b[2J there",
        '  2   +0.010s  tool_called    search(q="BER")',
        "  3   +0.060s  tool_result    search → 2 items, 16 B, in 50ms, call #2 · [1,2]",
        '  4   +12.50s  cache_hit      {"key":"k\\u202e"}',
    ]


async def test_first_rows_are_written_before_the_log_is_read() -> None:
    backend = _CountingReads()
    # No snapshots: their reads in the background would interleave with the timeline's.
    async with Store(backend, snapshot_interval=0) as store:
        session = await store.create_session(session_id="long")
        events = [agentstore.user_message(f"step {i}") for i in range(3 * PAGE)]
        await store.append_many(session.id, events)
        info = await store.get_session(session.id)
        backend.reads = 0
        out = _Recorder(backend)
        console = Console(file=out, width=80, markup=False, emoji=False, highlight=False)
        assert not console.is_terminal
        await _timeline(store, info, EventQuery(), Timeline(), follow=False, console=console)
    rows = [(reads, text) for reads, text in out.writes if "user_message" in text]
    # A small first page (about a screen), written before the next page is read; then
    # each page's rows before the page after it: four reads, four writes of rows.
    assert rows[0][0] == 1
    assert rows[0][1].count("\n") < PAGE
    assert rows[0][1].startswith("   1   +0.000s  user_message   step 0\n")
    assert [reads for reads, _ in rows] == list(range(1, len(rows) + 1))
    assert backend.reads == len(rows) >= 4
    assert sum(text.count("user_message") for _, text in rows) == 3 * PAGE
    assert "\x1b" not in out.getvalue()


def test_a_page_of_rows_is_the_rows_one_by_one() -> None:
    # The page-at-a-time writer gives the same text as one row at a time.
    events = [
        build_event(
            f"e{i}",
            "s",
            i + 1,
            "tool_called",
            {"tool": "t", "args": {"n": i}},
            START + timedelta(seconds=i),
            Metadata(call_id=f"c{i}"),
        )
        for i in range(5)
    ]
    one, page = Timeline(), Timeline()
    assert page.rows_plain(events, 60) == "".join(one.row_plain(e, 60) + "\n" for e in events)
    assert page.footer().plain == one.footer().plain


class _Page(list[Event]):
    """A page that can be watched (a plain list takes no weak reference)."""


class _WatchedPages(MemoryBackend):
    """Notes, at each read, whether the page read before it was still held by anyone."""

    def __init__(self) -> None:
        super().__init__()
        self.last: weakref.ref[_Page] | None = None
        self.previous_alive: list[bool] = []

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        if self.last is not None:
            self.previous_alive.append(self.last() is not None)
        page = _Page(await super().read(session_id, flt))
        self.last = weakref.ref(page)
        return page


async def test_a_page_is_let_go_before_the_next_one_is_read() -> None:
    # Memory stays at one page of events, and the next page reuses what this one freed.
    backend = _WatchedPages()
    async with Store(backend, snapshot_interval=0) as store:
        session = await store.create_session(session_id="long")
        await store.append_many(session.id, [agentstore.user_message("x") for _ in range(2500)])
        info = await store.get_session(session.id)
        console = Console(file=io.StringIO(), width=80, markup=False, emoji=False)
        await _timeline(store, info, EventQuery(), Timeline(), follow=False, console=console)
    assert backend.previous_alive == [False, False, False]  # 100, 1000, 1000, 400 events


def test_objects_frozen_during_a_replay_are_given_back(cli: Cli, data_dir: Path) -> None:
    # The command keeps the process's objects out of full collections while it runs; a
    # program that runs it in process gets its collector back as it was, error or not.
    seed_session(data_dir, [("user_message", {"content": "hi"}, {}, 0)], session_id="one")
    before = gc.get_freeze_count()
    assert cli("replay", "one").exit_code == 0
    assert gc.get_freeze_count() == before
    assert cli("replay", "no-such-session").exit_code == 1
    assert gc.get_freeze_count() == before


async def test_the_json_and_jsonl_rows_let_a_page_go_before_the_next_read() -> None:
    # `replay --format json/jsonl` and `export` read through iter_events: one page of
    # events in memory, not two (it held the page it had yielded from while reading on).
    backend = _WatchedPages()
    async with Store(backend, snapshot_interval=0) as store:
        session = await store.create_session(session_id="long")
        await store.append_many(session.id, [agentstore.user_message("x") for _ in range(2500)])
        seen = [event.sequence_number async for event in iter_events(store, "long", EventQuery())]
    assert seen == list(range(1, 2501))
    assert backend.previous_alive == [False, False]  # 1000, 1000, 500 events

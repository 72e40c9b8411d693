"""`agentstore replay SESSION --step`: a pager through a session, one event at a time.

Each screen shows one event with its full payload and metadata, and the session's state
right after it, with what changed since the previous step marked (`+` added, `~` changed,
`-` removed) and highlighted. Keys: Enter, n, Space or → next; p, Backspace or ← previous; g first;
q, Ctrl-C or Ctrl-D quit. It needs a terminal: keys are read one at a time.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from agentstore import Event, Session, State, Store
from agentstore_cli.common import UsageError, open_store, resolve_session, run
from agentstore_cli.events_iter import EventQuery, iter_events
from agentstore_cli.headers import session_header
from agentstore_cli.render import (
    TYPE_STYLES,
    fmt_cost,
    fmt_elapsed,
    make_console,
    preview,
    print_line,
    safe,
)
from agentstore_cli.sanitize import clean

__all__ = ["flatten_state", "run_pager"]

NEXT, PREVIOUS, FIRST, QUIT, OTHER = "next", "previous", "first", "quit", "other"
_KEYS = {
    b"\r": NEXT,
    b"\n": NEXT,
    b"n": NEXT,
    b" ": NEXT,
    b"j": NEXT,
    b"\x1b[C": NEXT,
    b"\x1b[B": NEXT,
    b"p": PREVIOUS,
    b"k": PREVIOUS,
    b"\x7f": PREVIOUS,
    b"\x08": PREVIOUS,
    b"\x1b[D": PREVIOUS,
    b"\x1b[A": PREVIOUS,
    b"g": FIRST,
    b"q": QUIT,
    b"Q": QUIT,
    b"\x03": QUIT,
    b"\x04": QUIT,
    b"": QUIT,
}


def run_pager(ctx: typer.Context, data_dir: Path | None, session: str, query: EventQuery) -> None:
    """Run the step-by-step pager; refuse without a terminal on stdin and stdout."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "--step needs an interactive terminal (stdin and stdout); "
            "for scripts use --format json or jsonl"
        )

    async def main() -> None:
        async with open_store(ctx, data_dir) as store:
            sid = await resolve_session(store, session)
            info = await store.get_session(sid)
            total = await _count(store, info, query)
            async with contextlib.aclosing(iter_events(store, sid, query)) as events:
                await _Pager(store, info, events, make_console(), total).loop()

    run(main)


async def _count(store: Store, info: Session, query: EventQuery) -> int:
    """How many events the pager will step through, for its `Step 1 of N` header."""
    if query.types is None and query.since is None and query.until is None:
        # Sequence numbers run 1..event_count without gaps: no need to read the log.
        first = query.from_seq or 1
        last = min(query.to_seq or info.event_count, info.event_count)
        count = max(last - first + 1, 0)
        return count if query.limit is None else min(count, query.limit)
    count = 0
    async with contextlib.aclosing(iter_events(store, info.id, query)) as events:
        async for _event in events:
            count += 1
    return count


@contextlib.contextmanager
def _keys_mode(fd: int) -> Iterator[None]:
    """Read keys one by one without echo; Ctrl-C arrives as a key (a clean quit)."""
    saved = termios.tcgetattr(fd)
    mode = termios.tcgetattr(fd)
    mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG)
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def _read_key(fd: int) -> str:
    key = os.read(fd, 1)
    if key == b"\x1b":
        # An arrow key is ESC [ X; a lone ESC is followed by nothing.
        while len(key) < 3 and select.select([fd], [], [], 0.05)[0]:
            key += os.read(fd, 1)
    return _KEYS.get(key, OTHER)


def flatten_state(state: State) -> dict[str, str]:
    """Return a state as `key -> one-line value` rows, for showing and diffing."""
    rows: dict[str, str] = {
        "version": str(state.version),
        "event_count": str(state.event_count),
        "tokens.input": f"{state.tokens.input:,}",
        "tokens.output": f"{state.tokens.output:,}",
        "tokens.cost_usd": fmt_cost(state.tokens.cost_usd),
        "tool_calls": str(state.tool_calls),
        "errors": str(state.errors),
    }
    remaining = state.budget_remaining
    if remaining is not None:
        if remaining.cost_usd is not None:
            rows["budget.remaining_cost_usd"] = fmt_cost(remaining.cost_usd)
        if remaining.tokens is not None:
            rows["budget.remaining_tokens"] = f"{remaining.tokens:,}"
    for call_id, call in state.open_calls.items():
        rows[f"open_calls.{clean(call_id)}"] = (
            f"#{call.sequence_number} {call.type} {clean(call.name or '')}".rstrip()
        )
    for key, value in state.data.items():
        rows[f"data.{clean(str(key))}"] = preview(value, 300)
    for key, value in (state.model_extra or {}).items():
        rows[clean(str(key))] = preview(value, 300)
    return rows


class _Pager:
    def __init__(
        self,
        store: Store,
        info: Session,
        events: AsyncGenerator[Event, None],
        console: Console,
        total: int,
    ) -> None:
        self.total = total
        self.store = store
        self.info = info
        self.source = events
        self.console = console
        self.events: list[Event] = []
        self.exhausted = False
        self.states: dict[int, State] = {}

    async def _load(self, index: int) -> bool:
        """Make sure event `index` is loaded; False if there is no such event."""
        while index >= len(self.events) and not self.exhausted:
            try:
                self.events.append(await anext(self.source))
            except StopAsyncIteration:
                self.exhausted = True
        return index < len(self.events)

    async def _state(self, seq: int) -> State:
        state = self.states.get(seq)
        if state is None:
            state = self.states[seq] = await self.store.get_state(self.info.id, at_seq=seq)
        return state

    async def loop(self) -> None:
        fd = sys.stdin.fileno()
        if not await self._load(0):
            print_line(self.console, session_header(self.info))
            self.console.print(Text("No events match.", style="dim"))
            return
        index = 0
        note = ""
        with _keys_mode(fd):
            while True:
                await self._show(index, note)
                note = ""
                action = _read_key(fd)
                if action == QUIT:
                    break
                if action == NEXT:
                    if await self._load(index + 1):
                        index += 1
                    else:
                        note = "(this is the last event)"
                elif action == PREVIOUS:
                    if index > 0:
                        index -= 1
                    else:
                        note = "(this is the first event)"
                elif action == FIRST:
                    index = 0
        self.console.print()

    async def _show(self, index: int, note: str) -> None:
        event = self.events[index]
        # Changes since the previous step: with --type or other filters that is not
        # always the previous event, and the diff covers the events skipped in between.
        since = self.events[index - 1].sequence_number if index else event.sequence_number - 1
        before = await self._state(since)
        after = await self._state(event.sequence_number)
        console = self.console
        console.clear()
        print_line(console, session_header(self.info))
        # Appends while paging may add events: never show fewer than are loaded.
        total = max(self.total, len(self.events))
        head = Text(f"Step {index + 1} of {total}  ", style="bold")
        head.append(f"#{event.sequence_number} ", style="dim")
        head.append_text(safe(event.type, TYPE_STYLES.get(str(event.type), "white")))
        first = self.events[0].timestamp
        if event.timestamp is not None:
            head.append(f"  {event.timestamp.isoformat().replace('+00:00', 'Z')}", style="dim")
            if first is not None:
                seconds = (event.timestamp - first).total_seconds()
                head.append(f"  {fmt_elapsed(seconds)}", style="dim")
        print_line(console, head)
        meta = event.metadata.to_dict()
        if meta:
            console.print(Rule("metadata", style="dim", align="left"))
            metadata = {clean(str(k)): preview(v, 300) for k, v in meta.items()}
            console.print(_grid(metadata, {}, console.width))
        console.print(Rule("payload", style="dim", align="left"))
        console.print(_payload_text(event.payload))
        console.print(Rule("state after this event", style="dim", align="left"))
        console.print(_grid(flatten_state(after), flatten_state(before), console.width))
        console.print(Rule(style="dim"))
        keys = Text("Enter/n next · p previous · g first · q quit", style="dim")
        if note:
            keys.append(f"  {note}", style="yellow")
        print_line(console, keys)


def _payload_text(payload: Any) -> Text:
    try:
        body = orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        body = repr(payload)
    return Text(clean(body, keep_newlines=True))


_KEY_WIDTH = 32  # longer keys are cut: the marker and some of the value must show


def _grid(rows: dict[str, str], previous: dict[str, str], width: int) -> Table:
    """Key/value rows; with `previous`, mark and highlight what changed.

    The columns have fixed widths: the marker (`+`, `~`, `-`) always shows, even when a
    value is wider than the terminal (then the value is cut), so that changes are seen
    without colour (`NO_COLOR`).
    """
    keys = [*rows, *(key for key in previous if key not in rows)]
    key_width = min(max((len(key) for key in keys), default=1), _KEY_WIDTH)
    value_width = max(width - 1 - key_width - 2, 1)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=1)
    grid.add_column(style="dim", no_wrap=True, overflow="ellipsis", width=key_width)
    grid.add_column(overflow="ellipsis", no_wrap=True, width=value_width)
    diff = bool(previous)
    for key, value in rows.items():
        if not diff:
            mark, style = " ", ""
        elif key not in previous:
            mark, style = "+", "bold green"
        elif previous[key] != value:
            mark, style = "~", "bold yellow"
        else:
            mark, style = " ", ""
        grid.add_row(Text(mark, style=style), Text(key), Text(value, style=style))
    for key, value in previous.items():
        if key not in rows:
            grid.add_row(Text("-", style="bold red"), Text(key), Text(value, style="red strike"))
    return grid

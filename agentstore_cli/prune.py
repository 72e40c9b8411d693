"""`agentstore prune`: delete sessions whose last activity is older than a given age."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from agentstore import PrunedSession
from agentstore_cli.common import DataDirOption, LabelOption, open_store, parse_labels, run
from agentstore_cli.render import fmt_ago, fmt_bytes, fmt_int, make_console, print_line, safe
from agentstore_cli.timeparse import parse_duration

__all__ = ["prune"]

_HEADINGS = ("ID", "NAME", "EVENTS", "LAST EVENT", "SIZE")
_FULL_ID_WIDTH = 110


def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Delete sessions with no event for AGE (e.g. 30d, 12h, 2w).",
        ),
    ],
    label: LabelOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be deleted; delete nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation on a terminal.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Delete old sessions (their events and snapshots too) and print the space freed.

    A session's age is the time since its last event (or its creation if it has none).
    On a terminal it asks before deleting, unless --yes.

    \b
    Examples:
      agentstore prune --older-than 30d --dry-run
      agentstore prune --older-than 7d --label env=dev --yes
    """
    age = parse_duration(older_than, option="--older-than")
    labels = parse_labels(label)
    ask = not dry_run and not yes and sys.stdin.isatty()

    async def main() -> None:
        console = make_console()
        now = datetime.now(UTC)
        nothing = f"Nothing to delete: no session has been idle for {older_than}."
        if dry_run or ask:
            async with open_store(ctx, data_dir) as store:
                doomed = await store.prune(older_than=age, labels=labels, dry_run=True, now=now)
            if not doomed:
                print_line(console, Text(nothing))
                return
            _print(doomed, now, deleted=False, summary=dry_run)
            if dry_run:
                return
            total = fmt_bytes(sum(item.bytes for item in doomed))
            if not typer.confirm(f"Delete these {_count(doomed)} ({total})?", default=False):
                console.print(Text("Nothing deleted.", style="dim"))
                return
        async with open_store(ctx, data_dir, writable=True) as store:
            pruned = await store.prune(older_than=age, labels=labels, now=now)
        if not pruned:
            print_line(console, Text(nothing))
            return
        _print(pruned, now, deleted=True, quiet_list=ask)

    run(main)


def _count(items: list[PrunedSession]) -> str:
    return f"{len(items)} session{'s' if len(items) != 1 else ''}"


def _print(
    pruned: list[PrunedSession],
    now: datetime,
    *,
    deleted: bool,
    quiet_list: bool = False,
    summary: bool = True,
) -> None:
    console = make_console()
    if pruned and not quiet_list:
        short = console.width < _FULL_ID_WIDTH  # 8 characters, as `sessions` shows them
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
            header_style="bold",
        )
        rows = [
            [
                safe(item.session.id[:8] if short else item.session.id, "cyan"),
                safe(item.session.name) if item.session.name else Text("(unnamed)", style="dim"),
                Text(fmt_int(item.session.event_count)),
                Text(fmt_ago(item.session.updated_at, now)),
                Text(fmt_bytes(item.bytes)),
            ]
            for item in pruned
        ]
        # NAME takes what the other columns (never cut) leave; long names get an ellipsis.
        widths = [max(len(h), *(r[i].cell_len for r in rows)) for i, h in enumerate(_HEADINGS)]
        others = sum(widths) - widths[1] + 2 * (len(widths) - 1)
        widths[1] = max(4, min(widths[1], console.width - others))
        for index, column in enumerate(_HEADINGS):
            table.add_column(
                column,
                width=widths[index],
                no_wrap=True,
                overflow="ellipsis",
                justify="left" if column in ("ID", "NAME") else "right",
            )
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if not summary:
        return
    total = sum(item.bytes for item in pruned)
    if deleted:
        line = Text(f"Deleted {_count(pruned)}, freed {fmt_bytes(total)}.", style="bold")
    else:
        line = Text(
            f"Would delete {_count(pruned)}, freeing {fmt_bytes(total)} (dry run).", style="bold"
        )
    print_line(console, line)

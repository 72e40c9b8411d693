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
        if dry_run or ask:
            async with open_store(ctx, data_dir) as store:
                doomed = await store.prune(older_than=age, labels=labels, dry_run=True, now=now)
            _print(doomed, now, deleted=False)
            if dry_run or not doomed:
                return
            if not typer.confirm(f"Delete these {len(doomed)} sessions?", default=False):
                console.print(Text("Nothing deleted.", style="dim"))
                return
        async with open_store(ctx, data_dir, writable=True) as store:
            pruned = await store.prune(older_than=age, labels=labels, now=now)
        _print(pruned, now, deleted=True, quiet_list=ask)

    run(main)


def _print(
    pruned: list[PrunedSession], now: datetime, *, deleted: bool, quiet_list: bool = False
) -> None:
    console = make_console()
    if pruned and not quiet_list:
        table = Table(
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            collapse_padding=True,
            header_style="bold",
        )
        for column in ("ID", "NAME", "EVENTS", "LAST EVENT", "SIZE"):
            table.add_column(
                column, no_wrap=True, justify="left" if column in ("ID", "NAME") else "right"
            )
        for item in pruned:
            s = item.session
            table.add_row(
                safe(s.id, "cyan"),
                safe(s.name) if s.name else Text("(unnamed)", style="dim"),
                Text(fmt_int(s.event_count)),
                Text(fmt_ago(s.updated_at, now)),
                Text(fmt_bytes(item.bytes)),
            )
        console.print(table)
    total = sum(item.bytes for item in pruned)
    count = f"{len(pruned)} session{'s' if len(pruned) != 1 else ''}"
    if deleted:
        line = Text(f"Deleted {count}, freed {fmt_bytes(total)}.", style="bold")
    else:
        line = Text(f"Would delete {count}, freeing {fmt_bytes(total)} (dry run).", style="bold")
    print_line(console, line)

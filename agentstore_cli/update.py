"""`agentstore update`: rename, relabel or re-budget a session after it was created."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from rich.text import Text

from agentstore import Budget
from agentstore_cli.common import (
    DataDirOption,
    SessionArg,
    UsageError,
    open_store,
    parse_labels,
    resolve_session,
    run,
    write_bytes,
)
from agentstore_cli.headers import session_header
from agentstore_cli.render import fmt_cost, fmt_int, make_console, print_line

__all__ = ["update"]

_MAX_TOKENS = 2**63 - 1  # what a Budget takes: no store keeps a larger integer


class UpdateFormat(StrEnum):
    """Output formats of `update`."""

    text = "text"
    json = "json"


def update(
    ctx: typer.Context,
    session: SessionArg,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Rename the session.")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            metavar="KEY=VALUE",
            help="Add or change a label (repeatable); other labels stay.",
        ),
    ] = None,
    remove_label: Annotated[
        list[str] | None,
        typer.Option("--remove-label", metavar="KEY", help="Remove a label (repeatable)."),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens", min=0, metavar="N", help="Set the budget's token limit (in + out)."
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option("--max-cost", min=0, metavar="USD", help="Set the budget's cost limit."),
    ] = None,
    no_budget: Annotated[
        bool, typer.Option("--no-budget", help="Remove the session's budget.")
    ] = False,
    fmt: Annotated[
        UpdateFormat,
        typer.Option(
            "--format", "-o", metavar="FORMAT", help="text, or json (the session as it now is)."
        ),
    ] = UpdateFormat.text,
    data_dir: DataDirOption = None,
) -> None:
    """Rename, relabel or re-budget a session; what is not given stays as it is.

    A new budget limit keeps the other limit of the budget (set both, or --no-budget to
    remove it). The session's events are not touched.

    \b
    Examples:
      agentstore update 3f2a --name checkout-retry
      agentstore update latest --label env=prod --remove-label draft
      agentstore update 3f2a --max-cost 2.50 --max-tokens 500000
      agentstore update 3f2a --no-budget
    """
    added = parse_labels(label) or {}
    removed = set(remove_label or ())
    both = removed & added.keys()
    if both:
        raise UsageError(f"--label and --remove-label both name {sorted(both)[0]!r}")
    if max_tokens is not None and max_tokens > _MAX_TOKENS:
        raise UsageError(f"--max-tokens {max_tokens} is too large: at most {_MAX_TOKENS}")
    if max_cost is not None and not math.isfinite(max_cost):
        raise UsageError("--max-cost must be a finite number of dollars, e.g. --max-cost 2.50")
    if no_budget and (max_tokens is not None or max_cost is not None):
        raise UsageError("--no-budget removes the budget: it cannot be combined with --max-*")
    if (
        name is None
        and not added
        and not removed
        and not no_budget
        and (max_tokens is None and max_cost is None)
    ):
        raise UsageError(
            "nothing to change: give --name, --label, --remove-label, --max-tokens, "
            "--max-cost or --no-budget"
        )

    async def main() -> None:
        async with open_store(ctx, data_dir, writable=True) as store:
            sid = await resolve_session(store, session)
            current = await store.get_session(sid)
            changes: dict[str, Any] = {}
            if name is not None:
                changes["name"] = name
            if added or removed:
                missing = sorted(removed - current.labels.keys())
                if missing:
                    raise UsageError(
                        f"--remove-label {missing[0]!r}: the session has no such label"
                    )
                labels = {k: v for k, v in current.labels.items() if k not in removed}
                changes["labels"] = {**labels, **added}
            if no_budget:
                changes["budget"] = None
            elif max_tokens is not None or max_cost is not None:
                old = current.budget or Budget()
                changes["budget"] = Budget(
                    max_tokens=max_tokens if max_tokens is not None else old.max_tokens,
                    max_cost_usd=max_cost if max_cost is not None else old.max_cost_usd,
                )
            updated = await store.update_session(sid, **changes)
        if fmt is UpdateFormat.json:
            write_bytes(orjson.dumps(updated.to_dict()) + b"\n")
            return
        console = make_console()
        print_line(console, session_header(updated))
        budget = updated.budget
        if budget is None or (budget.max_tokens is None and budget.max_cost_usd is None):
            print_line(console, Text("budget: none", style="dim"))
        else:
            parts = []
            if budget.max_cost_usd is not None:
                parts.append(fmt_cost(budget.max_cost_usd))
            if budget.max_tokens is not None:
                parts.append(f"{fmt_int(budget.max_tokens)} tokens")
            print_line(console, Text("budget: " + " · ".join(parts)))

    run(main)

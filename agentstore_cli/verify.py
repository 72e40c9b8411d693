"""`agentstore verify`: check every log (or one session's); `--repair` fixes torn tails."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import orjson
import typer
from rich.text import Text

from agentstore import VerifyReport
from agentstore_cli.common import (
    DATA_DIR_ENV,
    CliError,
    DataDirOption,
    GlobalOptions,
    data_dir_of,
    open_store,
    resolve_session,
    run,
    write_bytes,
)
from agentstore_cli.render import make_console, safe

__all__ = ["VerifyFormat", "verify"]


class VerifyFormat(StrEnum):
    """Output formats of `verify`."""

    text = "text"
    json = "json"


def verify(
    ctx: typer.Context,
    session: Annotated[
        str | None,
        typer.Argument(
            metavar="SESSION",
            help="Check only this session (an id, id prefix, name or latest); default: all.",
            show_default=False,
        ),
    ] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Move torn tails (appends a crash cut short) aside, the one safe repair; "
            "say what was done. Changes nothing else.",
        ),
    ] = False,
    output: Annotated[
        VerifyFormat,
        typer.Option(
            "--format", "-o", metavar="FORMAT", help="text, or json (one object, for scripts)."
        ),
    ] = VerifyFormat.text,
    data_dir: DataDirOption = None,
) -> None:
    """Check logs, sessions and snapshots; list problems as file:line; exit 1 if any.

    Checks that every line is a valid JSON event, sequence numbers run 1..N, events name
    their session, ids are unique, timestamps never go back, no log ends torn, and each
    snapshot equals a fold of its events.
    """

    root = ctx.find_root().obj
    on_store = isinstance(root, GlobalOptions) and root.store is not None and data_dir is None
    path = data_dir_of(ctx, data_dir)
    # Even with --repair: never create an empty data directory (a --store URL is checked
    # by opening it, as the other commands do).
    if not on_store and not path.is_dir():
        raise CliError(f"no data directory at {path}: pass --data-dir DIR or set {DATA_DIR_ENV}")

    async def main() -> VerifyReport:
        async with open_store(ctx, data_dir, writable=repair) as store:
            sid = await resolve_session(store, session) if session is not None else None
            return await store.verify(sid, repair=repair)

    report = run(main)
    if output is VerifyFormat.json:
        write_bytes(orjson.dumps(_as_dict(report)) + b"\n")
    else:
        _print_text(report)
    if not report.ok:
        raise typer.Exit(1)


def _as_dict(report: VerifyReport) -> dict[str, object]:
    return {
        "ok": report.ok,
        "sessions": report.sessions,
        "events": report.events,
        "problems": [
            {
                "session_id": p.session_id,
                "path": p.path,
                "line": p.line,
                "kind": p.kind,
                "message": p.message,
                "repairable": p.repairable,
            }
            for p in report.problems
        ],
        "repairs": report.repairs,
        "notes": report.notes,
    }


def _print_text(report: VerifyReport) -> None:
    console = make_console()
    for problem in report.problems:
        console.print(safe(str(problem), "red"), soft_wrap=True)
    for repair in report.repairs:
        console.print(safe(f"repaired: {repair}", "yellow"), soft_wrap=True)
    for note in report.notes:
        console.print(safe(f"note: {note}", "dim"), soft_wrap=True)
    summary = Text(
        f"checked {report.sessions} session{'s' if report.sessions != 1 else ''}, "
        f"{report.events} event{'s' if report.events != 1 else ''}: "
    )
    if report.ok:
        summary.append("no problems", "green")
    else:
        count = len(report.problems)
        summary.append(f"{count} problem{'s' if count != 1 else ''}", "bold red")
        if any(p.repairable for p in report.problems):
            summary.append(" (run with --repair to move torn tails aside)")
    console.print(summary, soft_wrap=True)

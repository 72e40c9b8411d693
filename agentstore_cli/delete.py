"""`agentstore delete`: delete one session (its events and snapshot) for good."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

from agentstore_cli.common import DataDirOption, SessionArg, open_store, resolve_session, run
from agentstore_cli.render import fmt_int, make_console, print_line
from agentstore_cli.sanitize import clean

__all__ = ["delete"]


def delete(
    ctx: typer.Context,
    session: SessionArg,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation on a terminal.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a session, its events and its snapshot, for good.

    On a terminal it shows the session and asks first, unless --yes. To delete many
    sessions by age, use prune.

    \b
    Examples:
      agentstore delete 3f2a
      agentstore delete latest --yes
    """
    ask = not yes and sys.stdin.isatty()

    async def main() -> None:
        console = make_console()
        async with open_store(ctx, data_dir, writable=True) as store:
            sid = await resolve_session(store, session)
            info = await store.get_session(sid)
            # The name is the session's own text (an agent's, an LLM's): shown escaped, in
            # the prompt too, never as the terminal sequences it may hold.
            what = f"session {sid}" + (f" ({clean(info.name)})" if info.name else "")
            events = f"{fmt_int(info.event_count)} event{'s' if info.event_count != 1 else ''}"
            if ask and not typer.confirm(f"Delete {what} and its {events}?", default=False):
                console.print(Text("Nothing deleted.", style="dim"))
                return
            await store.delete_session(sid)
        print_line(console, Text(f"Deleted {what} and its {events}."))

    run(main)

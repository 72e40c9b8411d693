"""`agentstore fork`: branch a session at an event, to replay from there differently."""

from __future__ import annotations

from typing import Annotated

import typer

from agentstore_cli.common import (
    DataDirOption,
    SessionArg,
    open_store,
    parse_labels,
    resolve_session,
    run,
)

__all__ = ["fork"]


def fork(
    ctx: typer.Context,
    session: SessionArg,
    at: Annotated[
        int,
        typer.Option("--at", min=0, metavar="SEQ", help="Copy events 1..SEQ into the fork."),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Name of the fork (default: the source's).")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", metavar="KEY=VALUE", help="Extra label (repeatable)."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Fork a session at event SEQ into a new session and print the new id.

    The fork keeps the events' payloads, metadata and timestamps and is labelled
    forked_from and forked_at; the source is not changed.

    \b
    Examples:
      agentstore fork 3f2a --at 12 --name retry-with-gpt-4o
      agentstore replay "$(agentstore fork 3f2a --at 12)"
    """
    labels = parse_labels(label)

    async def main() -> None:
        async with open_store(ctx, data_dir, writable=True) as store:
            sid = await resolve_session(store, session)
            created = await store.fork(sid, at_seq=at, name=name, labels=labels)
        typer.echo(created.id)

    run(main)

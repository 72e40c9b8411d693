"""`agentstore migrate --store URL`: create or upgrade a database store's schema.

Opening a store migrates it too (unless its URL says `migrate=false`); this command is for
doing it ahead of a deployment, with a user that may create tables, and for checking.
"""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from agentstore.backends.registry import scheme_of
from agentstore_cli.common import CliError, GlobalOptions, UsageError, run

__all__ = ["migrate"]


def migrate(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            help="The database store (postgresql://user@host/db?schema=...); default: the "
            "global --store ($AGENTSTORE_STORE).",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Only report the schema's version; exit 1 if it is behind."),
    ] = False,
) -> None:
    """Create or upgrade the schema of a PostgreSQL store, step by step.

    Safe to run from several hosts at once (an advisory lock serialises them), and a
    no-op when the schema is current. Refuses a schema newer than this agentstore. A
    read-only standby (a replica) is never written to: its version is reported, and if it
    is behind, the command exits 1 and says to migrate its primary.

    \b
    Examples:
      agentstore migrate --store postgresql://admin@db/agents
      agentstore migrate --store 'postgresql://admin@db/agents?schema=team_a' --check
    """
    root = ctx.find_root().obj
    if store is None and isinstance(root, GlobalOptions):
        store = root.store
    if store is None:
        raise UsageError("which store? pass --store postgresql://user@host/db")
    if scheme_of(store) not in ("postgresql", "postgres"):
        raise UsageError(
            f"--store {store!r}: only database stores (postgresql://...) have a schema; "
            "a data directory needs no migration"
        )

    url = store

    async def main() -> None:
        # Imported here: the driver belongs to agentstore[postgres].
        from agentstore.backends.postgres.options import parse_url, redact
        from agentstore.backends.postgres.pool import connect
        from agentstore.backends.postgres.schema import (
            MIGRATIONS,
            check_not_newer,
            current_version,
            schema_version,
        )
        from agentstore.backends.postgres.schema import migrate as run_steps

        options = parse_url(url)
        conn = await connect(options)
        try:
            found = await schema_version(conn, options.schema)
            check_not_newer(found, options.schema, options.display)
            # A hot standby (a read replica) has the schema its primary had when it last
            # replayed, and takes no writes: it is reported, never migrated.
            standby = bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
            if check or standby:
                behind = found < current_version()
                state = ("behind" if behind else "current") + (
                    ", a read-only standby" if standby else ""
                )
                typer.echo(
                    f"schema {options.schema!r}: version {found} of {current_version()} ({state})"
                )
                if behind and standby:
                    raise CliError(
                        f"{options.display} is a read-only standby (a replica): migrate its "
                        "primary (agentstore migrate --store PRIMARY_URL); the standby has the "
                        "new schema once it has replayed that far"
                    )
                if behind:
                    # The URL as given (`display` lacks ?schema=, and would migrate another
                    # schema), quoted for a shell: `?` and `&` are special there.
                    raise CliError(f"run: agentstore migrate --store {shlex.quote(redact(url))}")
                return
            applied = await run_steps(conn, options.schema, options.display)
        finally:
            await conn.close()
        for name in applied:
            typer.echo(f"applied: {name}")
        done = len(MIGRATIONS)
        typer.echo(f"schema {options.schema!r} is at version {done} (current)")

    run(main)

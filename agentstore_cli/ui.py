"""`agentstore ui`: serve a store with its web UI and open the browser on the right page."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import anyio
import orjson
import typer

import agentstore
from agentstore_cli.common import (
    UsageError,
    data_dir_of,
    global_store,
    open_store,
    resolve_session,
)

__all__ = ["ui"]


def page_url(base: str, session: str | None) -> str:
    """Return the UI page to open: a session's page (an id or a unique prefix) or the list."""
    if session:
        return f"{base}/sessions/{quote(session, safe='')}"
    return f"{base}/"


async def _resolve(ctx: typer.Context, data_dir: Path | None, url: str | None, ref: str) -> str:
    if url is not None:
        async with agentstore.open(url, read_only=True) as store:
            return await resolve_session(store, ref)
    async with open_store(ctx, data_dir) as store:
        return await resolve_session(store, ref)


def ui(
    ctx: typer.Context,
    session: Annotated[
        str | None,
        typer.Argument(
            help="Open this session: an id, a unique id prefix, a name, or latest.",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", metavar="DIR", help="Data directory to show.", show_default=False
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", metavar="URL", help="Store URL to show instead of a data directory."
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="HTTP port (0: any free).")
    ] = 8765,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the address; do not open a browser.")
    ] = False,
) -> None:
    """Look at agent runs in a browser: `agentstore serve` plus the web UI, opened for you.

    Serves the HTTP/JSON API and the UI on loopback (no gRPC door) until Ctrl-C.

    \b
    Examples:
      agentstore ui                        the sessions page
      agentstore ui 3f2a                   one session (id prefix, name or latest)
      agentstore ui --port 0 --no-browser  any free port; print the address only
    """
    from agentstore.server.runner import ServerConfig, is_loopback
    from agentstore.server.runner import serve as run_server

    if data_dir is not None and store is not None:
        raise UsageError("give --data-dir or --store, not both")
    if not is_loopback(host):
        # The UI has no login: off loopback, use `agentstore serve` with a token instead.
        raise UsageError(
            f"agentstore ui listens on loopback only, not {host}; "
            "to share a store, run `agentstore serve --host ... --token-file ...`"
        )
    if data_dir is None:  # the global --store too, as `serve` takes it
        store = store or global_store(ctx)
    if session is not None:
        # Resolved as every command does (latest, a name, a prefix) and before anything
        # listens, so a wrong name is one line and no server.
        session = anyio.run(_resolve, ctx, data_dir, store, session)
    config = ServerConfig(
        data_dir=None if store else data_dir_of(ctx, data_dir),
        store_url=store,
        host=host,
        http_port=port,
        grpc_port=None,
    )

    def announce(line: str) -> None:
        base = orjson.loads(line)["listening"]["http"]
        url = page_url(base, session)
        typer.echo(f"agentstore ui: {url}  (Ctrl-C to stop)")
        if not no_browser:
            # A browser may take a while to start; the server must not wait for it.
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    anyio.run(lambda: run_server(config, announce=announce))

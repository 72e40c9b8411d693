"""What every command shares: the data directory, opening the store, errors, output.

A command module uses it like this (see `stats.py` for a full example)::

    def my_command(ctx: typer.Context, session: SessionArg, data_dir: DataDirOption = None):
        '''One line of help.'''

        async def main() -> None:
            async with open_store(ctx, data_dir) as store:          # read-only
                sid = await store.resolve_session_id(session)
                ...

        run(main)

Errors: raise `CliError(message)` (exit 1) or `UsageError(message)` (exit 2) from anywhere,
sync or async; any `AgentStoreError` becomes one line on stderr and exit 1 (2 for
`InvalidInputError`). `agentstore_cli.app.main` prints them; nothing prints a traceback
unless `--debug` (or `AGENTSTORE_DEBUG=1`) is given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
import typer

import agentstore
from agentstore import AmbiguousSessionError, InvalidInputError, Session, Store, StoreLockedError
from agentstore.backends.base import SessionPage, SkippedSession
from agentstore.errors import SessionNotFoundError
from agentstore_cli.sanitize import clean_json

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "CliError",
    "DataDirOption",
    "GlobalOptions",
    "LATEST",
    "SessionArg",
    "UsageError",
    "data_dir_of",
    "global_store",
    "open_store",
    "listing",
    "listing_log_muted",
    "PageWalk",
    "next_page_cursor",
    "parse_labels",
    "resolve_session",
    "run",
    "write_bytes",
]

T = TypeVar("T")

DATA_DIR_ENV = "AGENTSTORE_DATA_DIR"
DEFAULT_DATA_DIR = "./agent-data"

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        readable=False,  # checked by open_store, with a message in CLI words
        help=f"Data directory (overrides the global --data-dir and ${DATA_DIR_ENV}).",
        show_default=False,
    ),
]

LabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--label",
        "-l",
        metavar="KEY=VALUE",
        help="Only sessions with this label (repeatable; all must match).",
    ),
]
"""`--label k=v`, repeatable; parse it with `parse_labels`."""
"""The `--data-dir` option every command takes, so it works after the command name too."""


LATEST = "latest"
"""The session argument that names the newest session (by creation time)."""

SESSION_HELP = "Session: its id, a unique id prefix, its name (if unique), or latest."

SessionArg = Annotated[str, typer.Argument(metavar="SESSION", help=SESSION_HELP)]
"""The SESSION argument of every command that takes one; resolve it with `resolve_session`."""

_NAME_PAGE = 1000  # sessions a page when a name is looked up (a server's largest page)
_LIST_PAGE = 1000  # sessions per page read by `listing` (a server's largest page)


class CliError(Exception):
    """An error to show as one line on stderr, exiting with `exit_code` (default 1)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(CliError):
    """Bad command-line input (a malformed option value): exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


@dataclass(slots=True)
class GlobalOptions:
    """The options given before the command name (kept in `ctx.obj`)."""

    data_dir: Path
    debug: bool = False
    data_dir_from: str = "default"
    """Where `data_dir` came from: `flag`, `env` or `default` (for error messages)."""
    store: str | None = None
    """`--store URL`: a store URL (postgresql://...) used instead of the data directory."""
    read_store: str | None = None
    """`--read-store URL`: a read replica of `store` for replays and listings."""


def _globals(ctx: typer.Context) -> GlobalOptions:
    root = ctx.find_root()
    obj = root.obj
    if isinstance(obj, GlobalOptions):
        return obj
    # A command invoked without the app's callback (only in unusual embeddings).
    return GlobalOptions(
        Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR),
        store=os.environ.get("AGENTSTORE_STORE") or None,
    )


def global_store(ctx: typer.Context) -> str | None:
    """Return the global `--store URL` (or `$AGENTSTORE_STORE`), None if not given."""
    return _globals(ctx).store


def data_dir_of(ctx: typer.Context, data_dir: Path | None) -> Path:
    """Return the data directory: the command's `--data-dir`, else the global one."""
    return data_dir if data_dir is not None else _globals(ctx).data_dir


def _where(ctx: typer.Context, data_dir: Path | None) -> str:
    """How the user chose the data directory, for a message: `(from --data-dir)`."""
    source = "flag" if data_dir is not None else _globals(ctx).data_dir_from
    if source == "flag":
        return " (from --data-dir)"
    if source == "env":
        return f" (from ${DATA_DIR_ENV})"
    return ""


def _check_data_dir(ctx: typer.Context, data_dir: Path | None, *, writable: bool) -> Path:
    """Fail with a message in CLI words if the data directory cannot be used."""
    path = data_dir_of(ctx, data_dir)
    where = _where(ctx, data_dir)
    command = ctx.command_path
    if path.exists() and not path.is_dir():
        raise CliError(f"{path}{where} is a file, not a data directory")
    if not path.exists():
        if writable:
            return path  # created by the store
        hint = "" if where else f": pass --data-dir DIR or set ${DATA_DIR_ENV}"
        raise CliError(f"no data directory at {path}{where}{hint}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise CliError(f"cannot read the data directory {path}{where}: permission denied")
    events = path / "events"
    if writable and not os.access(events if events.is_dir() else path, os.W_OK):
        raise CliError(
            f"'{command}' writes to the data directory, and {path}{where} is not writable "
            "by you; read-only commands (sessions, replay, stats, export) still work"
        )
    return path


@contextlib.asynccontextmanager
async def open_store(
    ctx: typer.Context, data_dir: Path | None, *, writable: bool = False
) -> AsyncIterator[Store]:
    """Open the store of the data directory; read-only unless `writable`.

    A read-only store never writes, so read-only commands work on a data directory the
    user cannot write to; a missing directory is an error rather than created.
    """
    opts = _globals(ctx)
    if opts.store is not None and data_dir is None:
        target = agentstore.open(opts.store, read_only=not writable, read_url=opts.read_store)
        async with target as store:
            yield store
        return
    path = _check_data_dir(ctx, data_dir, writable=writable)
    try:
        store = await agentstore.open(path, read_only=not writable)
    except StoreLockedError as exc:
        raise CliError(
            f"cannot write to the data directory {path}: {exc.__cause__ or exc}"
        ) from exc
    async with store:
        yield store


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run a command's async body on a fresh event loop and return its result."""
    return anyio.run(main)


def parse_labels(values: list[str] | None) -> dict[str, str] | None:
    """Parse repeated `--label k=v` values; raise `UsageError` on a malformed one."""
    if not values:
        return None
    labels: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --label {value!r}: use KEY=VALUE, e.g. --label env=prod")
        labels[key] = val
    return labels


def write_bytes(data: bytes, *, flush: bool = False) -> None:
    """Write JSON bytes to stdout, flushing if asked (line-by-line output).

    DEL, C1 controls and bidi overrides are written as `\\uXXXX` escapes (equivalent JSON),
    so that JSON printed straight to a terminal cannot drive it.
    """
    data = clean_json(data)
    stream = sys.stdout
    stream.flush()
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        if flush:
            buffer.flush()
    else:  # a text-only stream (rare: some embeddings)
        stream.write(data.decode())
        if flush:
            stream.flush()


async def resolve_session(store: Store, ref: str) -> str:
    """Return the full id of the session `ref` names, as a user types it.

    `ref` is `latest` (the newest session), an id, a unique id prefix, or a session's
    name: ids win over names, and a name that several sessions share is an error that
    lists them. Raises `SessionNotFoundError` or `AmbiguousSessionError` (one line on
    stderr).
    """
    if ref == LATEST:
        newest, skipped = await listing(store, limit=1)
        if skipped:
            # The one passed over may be the newest: 'latest' would name another session
            # (and `delete latest` delete it).
            files = "a session file" if len(skipped) == 1 else f"{len(skipped)} session files"
            raise CliError(
                f"cannot tell which session is the latest: {files} could not be read "
                f"({skipped[0]}); name the session by its id"
            )
        if not newest:
            raise CliError("there are no sessions yet, so no latest one")
        return newest[0].id
    try:
        return await store.resolve_session_id(ref)
    except (SessionNotFoundError, InvalidInputError) as exc:
        if isinstance(exc, AmbiguousSessionError):
            raise
        by_name = await _sessions_named(store, ref)
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            shown = ", ".join(sid[:8] for sid in by_name[:10])
            more = f" and {len(by_name) - 10} more" if len(by_name) > 10 else ""
            raise CliError(
                f"{len(by_name)} sessions are named {ref!r} ({shown}{more}): "
                "pass an id or id prefix instead"
            ) from None
        raise  # no session has that id or that name


async def _sessions_named(store: Store, name: str) -> list[str]:
    """The ids of the sessions called `name`, newest first (a scan of the listing).

    Paged by cursor, each session read once: by offset, each page read every session
    before it again (the oldest of 5,000 sessions took 21 s to name), and a session
    created meanwhile shifted the pages (one named twice: "2 sessions are named").
    """
    found: list[str] = []
    cursor: str | None = None
    seen = PageWalk()
    while True:
        page = await store.list_sessions_page(limit=_NAME_PAGE, cursor=cursor)
        found.extend(s.id for s in page.sessions if s.name == name)
        cursor = next_page_cursor(page, seen)
        if cursor is None:
            return found


async def listing(
    store: Store,
    *,
    limit: int,
    offset: int = 0,
    labels: dict[str, str] | None = None,
) -> tuple[list[Session], list[SkippedSession]]:
    """Return `limit` sessions after the `offset` newest (as `Store.list_sessions`), and
    the sessions the listing passed over as unreadable, each once, to report.

    The pages say what was passed over, locally and through a server alike; the file
    backend's log line of each is muted meanwhile, the caller reporting it instead.
    """
    found: list[Session] = []
    skipped: dict[SkippedSession, None] = {}  # in order, once each: named on every page
    cursor: str | None = None
    seen = PageWalk()
    skip = offset
    with listing_log_muted():
        while len(found) < limit:
            want = min(skip + limit - len(found), _LIST_PAGE)
            page = await store.list_sessions_page(limit=want, cursor=cursor, labels=labels)
            skipped.update(dict.fromkeys(page.skipped))
            taken = page.sessions[skip:]
            skip = max(skip - len(page.sessions), 0)
            found.extend(taken[: limit - len(found)])
            cursor = next_page_cursor(page, seen)
            if cursor is None:
                break
    return found, list(skipped)


class PageWalk:
    """The pages of one listing read so far: the cursors they gave, the sessions they
    listed (see `next_page_cursor`)."""

    __slots__ = ("cursors", "ids")

    def __init__(self) -> None:
        self.cursors: set[str] = set()
        self.ids: set[str] = set()


def next_page_cursor(page: SessionPage, seen: PageWalk) -> str | None:
    """The cursor of the listing's page after `page` (None: it was the last).

    Raises `CliError` if that cursor came before, or if `page` lists no session the pages
    before it did not (`seen` holds what they gave): a listing that goes round (a server's
    bug, or a hostile one) was read forever, holding more on every page, and a server
    that makes up a new cursor each time goes round all the same. A store's cursors only
    go on (newest first), and each of its pages with one lists sessions of its own.
    """
    cursor = page.next_cursor
    if cursor is not None:
        ids = [s.id for s in page.sessions]
        if cursor in seen.cursors or seen.ids.issuperset(ids):
            raise CliError(
                "the store's listing does not advance (a page's next cursor came back, or "
                "a page listed no session but those before it): the store or its server "
                "is not listing sessions right"
            )
        seen.cursors.add(cursor)
        seen.ids.update(ids)
    return cursor


@contextlib.contextmanager
def listing_log_muted() -> Iterator[None]:
    """Keep the file backend's warnings of passed-over sessions off stderr (the caller
    prints them from the page); every other log record goes where it went."""
    logger = logging.getLogger("agentstore.listing")
    muted = logging.NullHandler()
    propagate = logger.propagate
    logger.addHandler(muted)
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = propagate
        logger.removeHandler(muted)

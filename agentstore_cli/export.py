"""`agentstore export` and `agentstore import`: move a session between data directories.

`export` writes an object `{"session": {...}, "events": [...]}` that keeps the session's
name, labels, budget and creation time with its events, so `export | import -`
round-trips a session; with `--bare` it writes the same JSON array as `replay --format
json` (the on-disk events only). `import` reads either form, or JSON lines, and
re-creates the session with the same id, sequence numbers and timestamps.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError

from agentstore import Event, InvalidInputError, Session
from agentstore_cli.common import (
    CliError,
    DataDirOption,
    SessionArg,
    UsageError,
    open_store,
    resolve_session,
    run,
    write_bytes,
)
from agentstore_cli.events_iter import EventQuery, iter_events
from agentstore_cli.replay import write_json_array
from agentstore_cli.sanitize import clean_json

__all__ = ["export", "import_", "parse_export"]


def export(
    ctx: typer.Context,
    session: SessionArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", metavar="FILE", help="Write to FILE instead of stdout."),
    ] = None,
    bare: Annotated[
        bool,
        typer.Option(
            "--bare",
            help="Write only the events, as one JSON array (the same as replay -o json); "
            "the session's name, labels and budget are left out.",
        ),
    ] = False,
    with_session: Annotated[
        bool,
        typer.Option("--with-session", hidden=True, help="The default now; kept for scripts."),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Export a session (its name, labels, budget and events) as one JSON object.

    `import` reads it back as the same session: `agentstore export 3f2a | agentstore
    --data-dir ./copy import -` copies a session.

    \b
    Examples:
      agentstore export 3f2a --output run.json
      agentstore --data-dir ./other import run.json
      agentstore export latest --bare | jq '.[].type'
    """
    if bare and with_session:
        raise UsageError("--bare leaves the session out; it cannot be combined with --with-session")
    keep_session = not bare

    async def main() -> None:
        async with open_store(ctx, data_dir) as store:
            sid = await resolve_session(store, session)
            info = await store.get_session(sid)
            with _destination(output) as write:
                if keep_session:
                    write(b'{"session":' + orjson.dumps(info.to_dict()) + b',\n"events":')
                async with contextlib.aclosing(iter_events(store, sid, EventQuery())) as events:
                    if keep_session:
                        await write_json_array(events, lambda b: write(b.rstrip(b"\n")))
                        write(b"}\n")
                    else:
                        await write_json_array(events, write)

    run(main)


@contextlib.contextmanager
def _destination(output: Path | None) -> Any:
    """Yield a `write(bytes)` for stdout, or for FILE written via a temp file + rename."""
    if output is None or str(output) == "-":
        yield write_bytes
        write_bytes(b"", flush=True)
        return
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            yield lambda data: handle.write(clean_json(data))
        os.replace(tmp, output)  # a failed export never leaves half a file behind
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def parse_export(data: bytes, source: str) -> tuple[dict[str, Any], list[Event]]:
    """Parse an export (array, `{"session", "events"}` object, or JSON lines).

    Returns the session fields and the events; raises `UsageError` naming `source`.
    """
    try:
        doc: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            doc = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"{source}: not JSON or JSON lines ({exc})") from None
    session: dict[str, Any] | None = None
    if isinstance(doc, dict) and "events" in doc:
        session = doc.get("session")
        raw_events = doc["events"]
        if not isinstance(session, dict):
            raise UsageError(f'{source}: "session" must be a JSON object')
    elif isinstance(doc, dict) and "sequence_number" in doc:
        raw_events = [doc]  # a single JSON line
    else:
        raw_events = doc
    if not isinstance(raw_events, list):
        raise UsageError(f"{source}: expected a JSON array of events (agentstore export)")
    events: list[Event] = []
    for index, raw in enumerate(raw_events, start=1):
        if not (
            isinstance(raw, dict)
            and raw.get("timestamp") is not None
            and raw.get("sequence_number") is not None
            and raw.get("session_id")
        ):
            raise UsageError(
                f"{source}: event {index} is not a stored event (it needs session_id, "
                "sequence_number and timestamp, as agentstore export writes them)"
            )
        try:
            events.append(Event.from_json(raw))
        except InvalidInputError as exc:
            raise UsageError(f"{source}: event {index}: {exc}") from None
    if session is None:
        if not events:
            raise UsageError(f"{source}: no events, so no session id to import")
        ids = {event.session_id for event in events}
        if len(ids) != 1:
            raise UsageError(f"{source}: events of {len(ids)} sessions; export one at a time")
        first = events[0].timestamp
        session = {"id": ids.pop(), "created_at": first, "updated_at": first}
    try:
        Session.model_validate(session)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise UsageError(f"{source}: session {where}: {problem['msg']}") from None
    return session, events


def import_(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="An export (JSON or JSON lines); - for stdin.")
    ],
    data_dir: DataDirOption = None,
) -> None:
    """Re-create a session from an export, keeping its id, sequence numbers and times.

    Refuses to overwrite a session that exists. Prints the session id.

    \b
    Examples:
      agentstore import run.json
      agentstore replay 3f2a --format json | agentstore --data-dir ./copy import -
    """
    if file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror or exc}") from exc
    session, events = parse_export(data, "stdin" if file == "-" else file)

    async def main() -> None:
        async with open_store(ctx, data_dir, writable=True) as store:
            created = await store.import_session(session, events)
        typer.echo(f"imported session {created.id} ({created.event_count} events)", err=True)
        typer.echo(created.id)

    run(main)

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
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
import typer
from pydantic import ValidationError

from agentstore import Event, InvalidInputError, Session
from agentstore.eventjson import off_calendar
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


def parse_export(data: bytes, source: str) -> tuple[dict[str, Any], Iterator[Event]]:
    """Parse an export (array, `{"session", "events"}` object, or JSON lines).

    Returns the session fields and the events, as an iterator that turns each decoded
    object into an `Event` only when it is reached (and drops the object), so a large
    import is handed to the store a page at a time. Raises `UsageError` naming `source`,
    up front for the shape and the session, during iteration for a bad event (the store
    then creates nothing).
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
    if session is None:
        if not raw_events:
            raise UsageError(f"{source}: no events, so no session id to import")
        ids = {raw.get("session_id") for raw in raw_events if isinstance(raw, dict)}
        if len(ids) > 1:
            raise UsageError(f"{source}: events of {len(ids)} sessions; export one at a time")
        first = _stored_event(raw_events[0], 1, source).timestamp
        session = {"id": ids.pop(), "created_at": first, "updated_at": first}
    try:
        # A time with no UTC form is refused here too (the `Session` model checks it).
        Session.model_validate(session)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        why = problem["msg"].removeprefix("Value error, ")
        raise UsageError(f"{source}: session {where}: {why}") from None
    return session, _events(raw_events, source)


def _in_utc(at: datetime, where: str) -> None:
    """Refuse a time that leaves the years 1-9999 once in UTC, as the store keeps it (it
    would fail there with an OverflowError, after a data directory wrote the session)."""
    why = off_calendar(at)
    if why is not None:
        raise UsageError(f"{where}: {why}")


def _events(raw_events: list[Any], source: str) -> Iterator[Event]:
    for index in range(len(raw_events)):
        raw, raw_events[index] = raw_events[index], None  # never two copies of an event
        yield _stored_event(raw, index + 1, source)


def _stored_event(raw: Any, index: int, source: str) -> Event:
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
        event = Event.from_json(raw)
    except InvalidInputError as exc:
        raise UsageError(f"{source}: event {index}: {exc}") from None
    except OverflowError:  # its time leaves the calendar once in UTC
        raise UsageError(
            f"{source}: event {index}: timestamp {raw['timestamp']!r} is out of range in UTC "
            "(dates run from year 1 to 9999)"
        ) from None
    if event.timestamp is not None:
        _in_utc(event.timestamp, f"{source}: event {index} timestamp")
    return event


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
    source = "stdin" if file == "-" else file
    try:
        stream: BinaryIO = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from exc
    with stream:
        first = stream.readline()
        streamed = _json_lines(first, stream, source)
        if streamed is not None:
            session, events = streamed
        else:
            try:
                data = first + stream.read()
            except OSError as exc:
                raise CliError(f"cannot read {file}: {exc.strerror or exc}") from exc
            session, events = parse_export(data, source)
            del data  # the decoded objects are all that is needed now

        async def main() -> None:
            async with open_store(ctx, data_dir, writable=True) as store:
                created = await store.import_session(session, events)
            typer.echo(f"imported session {created.id} ({created.event_count} events)", err=True)
            typer.echo(created.id)

        run(main)


def _json_lines(
    first: bytes, rest: BinaryIO, source: str
) -> tuple[dict[str, Any], Iterator[Event]] | None:
    """Read JSON lines of events (`replay --format jsonl`) as they are imported.

    Returns None when the input is not JSON lines of events (a JSON document, which is
    parsed whole). Lines are decoded one at a time, so an import of any size holds only
    the page being written.
    """
    try:
        head = orjson.loads(first)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(head, dict) and "sequence_number" in head and first.endswith(b"\n")):
        return None
    event = _stored_event(head, 1, source)
    session = {"id": event.session_id, "created_at": event.timestamp}

    def events() -> Iterator[Event]:
        yield event
        index = 1
        for line in rest:
            if not line.strip():
                continue
            index += 1
            try:
                raw = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise UsageError(f"{source}: line {index} is not JSON ({exc})") from None
            yield _stored_event(raw, index, source)

    return session, events()

"""The routes of the HTTP door: each decodes its input, calls one service method, encodes.

No rule lives here: validation, limits and paging are the service's; errors are raised as
`AgentStoreError`s and turned into problem JSON by `create_app`'s handlers.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from agentstore import Event, InvalidInputError, Session, State
from agentstore.server.http_body import decode_json_body
from agentstore.server.http_schemas import (
    MAX_SEQ,
    AppendBatch,
    AppendOut,
    CreateSession,
    EventIn,
    ExportOut,
    ForkRequest,
    Health,
    SessionListOut,
)
from agentstore.server.http_stream import (
    ReadResponse,
    SseResponse,
    export_chunks,
    json_array_chunks,
    jsonl_chunks,
)
from agentstore.server.inputs import in_utc
from agentstore.server.service import AgentStoreService

__all__ = ["APPEND_BODY", "add_routes"]

_NDJSON = "application/x-ndjson"
APPEND_BODY: TypeAdapter[Any] = TypeAdapter(EventIn | AppendBatch | list[EventIn])

SessionId = Annotated[
    str,
    PathParam(
        description="A session id: A-Z a-z 0-9 _ - . (no '..'), at most 128 characters.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        max_length=128,
    ),
]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_UTC_Z)
    return Response(body, status, headers, media_type="application/json")


def _session_json(session: Session) -> dict[str, Any]:
    return session.model_dump(mode="json")


async def _read_body(request: Request) -> Any:
    """Decode the body: no NaN or infinity, 64-bit integers, nesting capped, keys once."""
    return decode_json_body(await request.body())


def add_routes(app: FastAPI, service: AgentStoreService) -> None:
    @app.get("/healthz", response_model=Health, tags=["server"])
    async def healthz() -> Response:
        """Tell whether the server is up (no token needed)."""
        return _json(service.health())

    @app.get("/v1/sessions", response_model=SessionListOut, tags=["sessions"])
    async def list_sessions(
        limit: Annotated[int, Query(ge=1, description="At most --max-page (1000).")] = 50,
        cursor: Annotated[str | None, Query(max_length=1024)] = None,
        label: Annotated[list[str] | None, Query(description="KEY=VALUE; repeat for all")] = None,
        prefix: Annotated[str | None, Query(max_length=128)] = None,
        q: Annotated[str | None, Query(max_length=256)] = None,
        summary: bool = False,
    ) -> Response:
        """List sessions newest first, filtered by labels, id prefix or a search text."""
        labels: dict[str, str] = {}
        for item in label or ():
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise InvalidInputError(f"invalid label {item!r}: use KEY=VALUE")
            labels[key] = value
        page = await service.list_sessions(
            limit=limit,
            cursor=cursor,
            labels=labels or None,
            prefix=prefix,
            query=q,
            summary=summary,
        )
        body: dict[str, Any] = {
            "sessions": [_session_json(s) for s in page.sessions],
            "next_cursor": page.next_cursor,
            "skipped": [{"session_id": s.session_id, "reason": s.reason} for s in page.skipped],
        }
        if summary:
            body["summaries"] = {
                sid: {**vars(s), "last_activity": s.last_activity}
                for sid, s in page.summaries.items()
            }
        return _json(body)

    @app.post("/v1/sessions", status_code=201, response_model=Session, tags=["sessions"])
    async def create_session(request: Request) -> Response:
        """Create a session; the body may give an id, a name, labels and a budget."""
        raw = await _read_body(request) if await request.body() else {}
        try:
            body = CreateSession.model_validate(raw)
        except ValidationError as exc:
            raise InvalidInputError(f"invalid session: {exc}") from None
        session = await service.create_session(
            name=body.name, session_id=body.id, labels=body.labels, budget=body.budget
        )
        return _json(_session_json(session), 201, {"Location": f"/v1/sessions/{session.id}"})

    @app.get("/v1/sessions/{session_id}", response_model=Session, tags=["sessions"])
    async def get_session(session_id: SessionId) -> Response:
        """Return one session."""
        return _json(_session_json(await service.get_session(session_id)))

    @app.delete("/v1/sessions/{session_id}", status_code=204, tags=["sessions"])
    async def delete_session(session_id: SessionId) -> Response:
        """Delete a session, its events and its snapshot, for good."""
        await service.delete_session(session_id)
        return Response(status_code=204)

    @app.post(
        "/v1/sessions/{session_id}/events",
        status_code=201,
        response_model=AppendOut,
        tags=["events"],
    )
    async def append_events(
        session_id: SessionId,
        request: Request,
        expected_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
    ) -> Response:
        """Append one event, or a batch (all or none), optionally with `expected_seq`."""
        raw = await _read_body(request)
        try:
            body = APPEND_BODY.validate_python(raw)
        except ValidationError as exc:
            raise InvalidInputError(
                "the body must be an event object, a list of them, or "
                f'{{"events": [...], "expected_seq": N}}: {exc}'
            ) from None
        if isinstance(body, AppendBatch):
            if body.expected_seq is not None and expected_seq not in (None, body.expected_seq):
                raise InvalidInputError("expected_seq differs between the query and the body")
            expected_seq = body.expected_seq if body.expected_seq is not None else expected_seq
            items = body.events
        else:
            items = body if isinstance(body, list) else [body]
        stored = await service.append(
            session_id,
            [item.model_dump(exclude_none=True) for item in items],
            expected_seq=expected_seq,
        )
        events = b",".join(event.to_json() for event in stored)
        last = stored[-1].sequence_number
        return Response(
            b'{"events":[%s],"last_seq":%d}' % (events, last), 201, media_type="application/json"
        )

    @app.get(
        "/v1/sessions/{session_id}/events",
        response_model=list[Event],
        responses={200: {"content": {_NDJSON: {"schema": {"type": "string"}}}}},
        tags=["events"],
    )
    async def read_events(
        session_id: SessionId,
        types: Annotated[list[str] | None, Query(description="Types, comma-separated")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        from_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
        to_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
        limit: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
        format: Annotated[str | None, Query(pattern="^(json|jsonl)$")] = None,
        accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Response:
        """Return events matching every filter (bounds inclusive) as JSON or JSON lines."""
        type_list = [t for item in types for t in item.split(",") if t] if types else None
        # A naive time is left to the store, whose error says what is wrong with it.
        if since is not None and since.tzinfo is not None:
            since = in_utc(since, "since")
        if until is not None and until.tzinfo is not None:
            until = in_utc(until, "until")
        pages = await service.read_events(
            session_id,
            types=type_list,
            since=since,
            until=until,
            from_seq=from_seq,
            to_seq=to_seq,
            limit=limit,
        )
        if format == "jsonl" or (format is None and accept is not None and _NDJSON in accept):
            return ReadResponse(service, jsonl_chunks(pages), media_type=_NDJSON)
        return ReadResponse(service, json_array_chunks(pages), media_type="application/json")

    @app.get("/v1/sessions/{session_id}/state", response_model=State, tags=["state"])
    async def get_state(
        session_id: SessionId, at_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None
    ) -> Response:
        """Return the session's state, or its state as of event `at_seq`."""
        state = await service.get_state(session_id, at_seq=at_seq)
        return _json(state.model_dump(mode="json"))

    @app.post(
        "/v1/sessions/{session_id}/fork", status_code=201, response_model=Session, tags=["state"]
    )
    async def fork(session_id: SessionId, request: Request) -> Response:
        """Copy the first `at_seq` events into a new session and return it."""
        try:
            body = ForkRequest.model_validate(await _read_body(request))
        except ValidationError as exc:
            raise InvalidInputError(f"invalid fork request: {exc}") from None
        session = await service.fork(
            session_id, at_seq=body.at_seq, name=body.name, labels=body.labels
        )
        return _json(_session_json(session), 201, {"Location": f"/v1/sessions/{session.id}"})

    @app.get("/v1/sessions/{session_id}/stats", response_model=dict[str, Any], tags=["state"])
    async def stats(
        session_id: SessionId, at_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None
    ) -> Response:
        """Return the same JSON as `agentstore stats --format json`."""
        return _json(await service.stats(session_id, at_seq=at_seq))

    @app.get(
        "/v1/sessions/{session_id}/export",
        response_model=ExportOut | list[Event],
        tags=["events"],
    )
    async def export(session_id: SessionId, bare: bool = False) -> Response:
        """Return the same JSON as `agentstore export` (`bare=1`: `export --bare`)."""
        info, pages = await service.export(session_id)
        chunks = json_array_chunks(pages) if bare else export_chunks(info, pages)
        return ReadResponse(
            service,
            chunks,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{session_id}.json"'},
        )

    @app.get(
        "/v1/sessions/{session_id}/stream",
        response_class=Response,
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
        tags=["events"],
    )
    async def stream(
        session_id: SessionId,
        request: Request,
        from_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
        created_at: Annotated[
            datetime | None,
            Query(description="The session's created_at as the client knows it"),
        ] = None,
    ) -> Any:
        """Follow a session live as Server-Sent Events (`id:` is the sequence number).

        A reconnecting client sends `Last-Event-ID` and resumes after that event; with
        `created_at` it is refused (404) if the session was deleted and made again under
        its id since, instead of resuming in the other session's events.
        """
        if created_at is not None:
            if created_at.tzinfo is None:
                raise InvalidInputError("created_at needs a zone, e.g. 2026-01-02T03:04:05Z")
            created_at = in_utc(created_at, "created_at")
        start = from_seq or 0
        if last_event_id is not None:
            # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
            if not (last_event_id.isascii() and last_event_id.isdigit()):
                raise InvalidInputError("Last-Event-ID must be a sequence number")
            start = int(last_event_id) + 1
            if start > MAX_SEQ:
                raise InvalidInputError(f"Last-Event-ID must be below {MAX_SEQ}")
        client = request.client.host if request.client else "?"
        stack = contextlib.AsyncExitStack()
        try:
            events = await stack.enter_async_context(
                service.follow(session_id, from_seq=start, client=client, created_at=created_at)
            )
        except BaseException:
            await stack.aclose()
            raise
        return SseResponse(service, events, stack)

"""The HTTP/JSON door: FastAPI routes over `AgentStoreService`, and nothing else.

FastAPI (on Starlette) was chosen over bare Starlette because `/openapi.json` is then
generated from the same pydantic models that validate the requests, so the published
schema cannot drift from what the server accepts, and schemathesis fuzzes exactly that.
Each route decodes its inputs, calls one service method and encodes the result; errors
become RFC 9457 problem JSON through `describe_error`, the one mapping both doors share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

import agentstore
from agentstore import (
    AgentStoreError,
    InvalidInputError,
    InvalidSessionIdError,
)
from agentstore.server.http_flow import (
    BodyLimitMiddleware,
    ConcurrencyLimitMiddleware,
    ConnectionAbortMiddleware,
    HeadMiddleware,
)
from agentstore.server.http_middleware import (
    AccessLogMiddleware,
    AuthMiddleware,
    LoopbackHostMiddleware,
    SecurityHeadersMiddleware,
    problem_body,
)
from agentstore.server.http_routes import APPEND_BODY, add_routes
from agentstore.server.http_schemas import (
    CreateSession,
    ForkRequest,
    Problem,
)
from agentstore.server.service import AgentStoreService
from agentstore.session import validate_session_id

__all__ = ["UI_STATIC", "create_app"]

UI_STATIC = Path(__file__).parent / "ui" / "static"
REQUESTS_PER_STREAM = 4
"""Requests in flight the HTTP door serves at once per live follow it allows (--max-streams):
past that, 429 server_busy (as uvicorn's limit_concurrency was set, which answered plain text)."""
"""Where the web UI's files are; served at `/` when the folder exists."""

_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, **_PROBLEM}
    for code, text in (
        (400, "Invalid input"),
        (401, "Missing or wrong token"),
        (404, "No such session"),
        (408, "Request body stalled"),
        (409, "Conflict"),
        (413, "Body too large"),
        (429, "Server busy"),
        (500, "Server error"),
        (503, "Storage unavailable"),
    )
}


_LIST_PARAMETERS = frozenset(("label", "types"))
"""The query parameters that may be repeated (every other one is a single value)."""


async def _each_parameter_once(request: Request) -> None:
    """Refuse a query that gives a single-valued parameter twice.

    FastAPI takes the last value, other readers the first: `?expected_seq=0&expected_seq=1`
    was an append conditional on 1 to the server, on 0 to a proxy or a log reader.
    """
    seen: set[str] = set()
    for key, _ in request.query_params.multi_items():
        if key in seen and key not in _LIST_PARAMETERS:
            raise InvalidInputError(f"the query gives {key[:100]!r} twice; give it once")
        seen.add(key)


def _problem(exc: BaseException, request: Request) -> Response:
    # A bug of ours (not an AgentStoreError) is logged with its traceback by the server;
    # the client gets `internal_error` and no detail.
    status, body = problem_body(exc, request.url.path)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 408:
        # The rest of a stalled body may still come: it must not be read as a request.
        headers = {"Connection": "close"}
    return Response(body, status, headers, media_type="application/problem+json")


def create_app(
    service: AgentStoreService,
    *,
    token: str | None = None,
    cors_origins: list[str] | None = None,
    json_logs: bool = False,
    ui_dir: Path | None = None,
    allowed_hosts: list[str] | None = None,
) -> Any:
    """Return the ASGI app of the HTTP door (with its middleware) over `service`.

    The web UI's files are served at `/` from `ui_dir` (default: the built-in ones, if
    the folder exists), every HTML page with a strict Content-Security-Policy.
    """
    app = FastAPI(
        title="agentstore",
        version=agentstore.__version__,
        summary="An event store for AI agent state: sessions, events, state, live follow.",
        docs_url=None,  # the Swagger page loads scripts from a CDN: not under our CSP
        redoc_url=None,
        responses=_ERRORS,
        dependencies=[Depends(_each_parameter_once)],
    )

    @app.exception_handler(AgentStoreError)
    async def _agentstore_error(request: Request, exc: AgentStoreError) -> Response:
        return _problem(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if any(tuple(err.get("loc", ())) == ("path", "session_id") for err in exc.errors()):
            # The same error, with the same code, as the store gives for a bad id.
            bad_id = request.path_params.get("session_id", "")
            try:
                validate_session_id(bad_id)
            except InvalidSessionIdError as id_error:
                return _problem(id_error, request)
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
            for err in exc.errors()
        ]
        return _problem(InvalidInputError("; ".join(parts) or "invalid request"), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        allowed = _allowed(app, request) if status in (404, 405) else ""
        if status == 404 and allowed:
            # The web UI's files (mounted at /) take every GET no route took, and answered
            # 404 for GET or HEAD of a POST-only path (.../fork): it exists, not for GET.
            status = 405
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        body = {
            "type": f"urn:agentstore:error:{code}",
            "title": code.replace("_", " "),
            "status": status,
            "detail": str(exc.detail) if status == exc.status_code else "Method Not Allowed",
            "code": code,
            "instance": request.url.path,
        }
        headers = exc.headers
        if status == 405 and allowed:  # (the UI's static files name none)
            # Starlette names the methods of the first route that matched the path only
            # (PUT /v1/sessions was told GET, HEAD): RFC 9110 wants all the path takes.
            headers = {**(headers or {}), "Allow": allowed}
        return Response(
            orjson.dumps(body),
            status,
            headers,
            media_type="application/problem+json",
        )

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up before its body was whole: nothing was written. Not a bug of
        # ours (no traceback); 499 is nginx's "client closed request", for the access log.
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> Response:
        return _problem(exc, request)

    add_routes(app, service)
    _add_openapi(app)
    static = ui_dir if ui_dir is not None else UI_STATIC
    if static.is_dir():
        from starlette.responses import FileResponse
        from starlette.staticfiles import StaticFiles

        # The UI's own pages (/sessions/<id>, /compare) are one HTML shell; its script routes.
        async def ui_page(request: Request) -> Response:
            return FileResponse(static / "index.html", media_type="text/html")

        for page in ("/sessions/{rest:path}", "/compare"):
            app.add_api_route(page, ui_page, methods=["GET"], include_in_schema=False)
        app.mount("/", StaticFiles(directory=static, html=True), name="ui")

    # Outermost last. CORS sits outside the token check: a browser's preflight carries
    # no Authorization header, and an error must carry CORS headers to be readable.
    asgi: Any = HeadMiddleware(app)
    if token is not None:
        asgi = AuthMiddleware(asgi, token)
    else:
        asgi = LoopbackHostMiddleware(
            asgi, frozenset(h.lower() for h in allowed_hosts or ()), frozenset(cors_origins or ())
        )
    # Inside CORS, so that a browser can read the refusal.
    asgi = ConcurrencyLimitMiddleware(asgi, REQUESTS_PER_STREAM * service.limits.max_streams)
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        asgi = CORSMiddleware(
            asgi,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    body_limit = BodyLimitMiddleware(
        asgi, service.limits.max_body_bytes, service.limits.body_timeout
    )
    # A stalled body must not hold a shutdown for the whole --body-timeout.
    service.on_stopping(body_limit.stop_waiting)
    asgi = body_limit
    asgi = SecurityHeadersMiddleware(asgi)
    asgi = AccessLogMiddleware(asgi, json_format=json_logs)
    return ConnectionAbortMiddleware(asgi)


def _add_openapi(app: FastAPI) -> None:
    """Document the bodies that routes decode themselves (with orjson, for hostile JSON)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        bodies: dict[tuple[str, str], tuple[TypeAdapter[Any], bool]] = {
            ("/v1/sessions", "post"): (TypeAdapter(CreateSession), False),
            ("/v1/sessions/{session_id}/events", "post"): (APPEND_BODY, True),
            ("/v1/sessions/{session_id}/fork", "post"): (TypeAdapter(ForkRequest), True),
        }
        for (path, method), (adapter, required) in bodies.items():
            schema = adapter.json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            doc["paths"][path][method]["requestBody"] = {
                "required": required,
                "content": {"application/json": {"schema": schema}},
            }
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(app: FastAPI, request: Request) -> str:
    """The `Allow` of a 405: the methods of every route whose path matches the request's."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")  # served as GET (http_flow's HEAD middleware)
    ordered = [m for m in _METHOD_ORDER if m in methods]
    return ", ".join(ordered + sorted(methods - set(_METHOD_ORDER)))

"""`agentstore otel export`: send a stored session to a tracing backend as OTLP/HTTP spans."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from agentstore_cli.common import (
    CliError,
    DataDirOption,
    UsageError,
    open_store,
    resolve_session,
    run,
)

__all__ = ["otel_app"]

otel_app = typer.Typer(
    name="otel",
    help="OpenTelemetry: send stored sessions to a tracing backend.",
    no_args_is_help=True,
)

_DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
_TRACES_PATH = "/v1/traces"


def endpoint_url(endpoint: str | None) -> str:
    """The OTLP/HTTP traces URL: `--endpoint`, else the standard variables, else localhost.

    A URL without a path gets `/v1/traces`, as with `OTEL_EXPORTER_OTLP_ENDPOINT`.
    """
    if endpoint is None:
        traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if traces:
            return traces
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not base:
            return _DEFAULT_ENDPOINT
        return base.rstrip("/") + _TRACES_PATH
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"invalid --endpoint {endpoint!r}: give an http(s) URL such as http://localhost:4318"
        )
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + _TRACES_PATH
    return endpoint


def _otel() -> Any:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        from agentstore.integrations import otel
    except ImportError as exc:
        raise CliError(
            "agentstore otel needs the OpenTelemetry SDK and OTLP exporter: "
            "pip install 'agentstore[otel]'"
        ) from exc
    return (
        otel,
        OTLPSpanExporter,
        Resource,
        TracerProvider,
        SimpleSpanProcessor,
        SpanExportResult,
        InMemorySpanExporter,
    )


@otel_app.command("export")
def export(
    ctx: typer.Context,
    session: Annotated[
        str, typer.Argument(metavar="SESSION", help="Session id, or any unique prefix of one.")
    ],
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            metavar="URL",
            help="OTLP/HTTP collector (default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
            "$OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318).",
            show_default=False,
        ),
    ] = None,
    include_content: Annotated[
        bool,
        typer.Option(
            "--include-content",
            help="Also send messages, prompts, tool arguments and results.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, metavar="SECONDS", help="Give up sending after this."),
    ] = 10.0,
    data_dir: DataDirOption = None,
) -> None:
    """Send one session as GenAI spans (invoke_agent, chat, execute_tool) over OTLP/HTTP.

    \b
    Examples:
      agentstore otel export 3f2a
      agentstore otel export 3f2a --endpoint http://collector:4318
    """
    url = endpoint_url(endpoint)
    (
        otel,
        OTLPSpanExporter,
        Resource,
        TracerProvider,
        SimpleSpanProcessor,
        SpanExportResult,
        InMemorySpanExporter,
    ) = _otel()
    # Build the spans first, then send them in one request whose outcome we can report.
    collected = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agentstore"}))
    provider.add_span_processor(SimpleSpanProcessor(collected))

    async def main() -> str:
        async with open_store(ctx, data_dir) as store:
            sid = await resolve_session(store, session)
            await otel.export(store, sid, provider, include_content=include_content)
        return sid

    sid = run(main)
    spans = collected.get_finished_spans()
    exporter = OTLPSpanExporter(endpoint=url, timeout=timeout)
    # The exporter logs each failed attempt itself; we report the outcome in one line.
    exporter_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    was_disabled = exporter_logger.disabled
    exporter_logger.disabled = True
    try:
        result = exporter.export(spans)
    finally:
        exporter_logger.disabled = was_disabled
        exporter.shutdown()
        provider.shutdown()
    if result != SpanExportResult.SUCCESS:
        raise CliError(f"could not send the spans to {url} (is a collector listening there?)")
    typer.echo(f"exported {len(spans)} spans of session {sid} to {url}")

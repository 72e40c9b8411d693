"""`agentstore otel export`: real OTLP/HTTP to a collector stand-in on loopback.

The stand-in is a tiny HTTP server in the test (127.0.0.1, port 0) that decodes each
request with the OpenTelemetry protobuf classes, as a collector would. The tests are
synchronous because the CLI runs its own event loop.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from typer.testing import CliRunner

import agentstore
from agentstore_cli.app import app


class Collector:
    """What the stand-in received: (path, content type, decoded request) per POST."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, str, ExportTraceServiceRequest]] = []


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    received = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            received.requests.append((self.path, self.headers["Content-Type"], request))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(received.status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def seed(data_dir: Path) -> str:
    async with agentstore.open(data_dir, pricing=False) as store:
        session = await store.create_session(name="support-bot")
        async with store.track_llm(session.id, "gpt-4o", [], provider="openai") as llm:
            llm.respond("checking", tokens_in=12, tokens_out=3)
        async with store.track_tool(session.id, "lookup", {"id": 7}, call_id="call_9") as t:
            t.result = {"status": "shipped"}
        return session.id


async def read_events(data_dir: Path, sid: str) -> list[agentstore.Event]:
    async with agentstore.open(data_dir, read_only=True) as store:
        return await store.get_events(sid)


def attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_export_sends_the_session_over_otlp_http(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    received, url = collector
    data = tmp_path / "data"
    sid = anyio.run(seed, data)
    result = invoke("--data-dir", str(data), "otel", "export", sid[:8], "--endpoint", url)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"exported 3 spans of session {sid} to {url}/v1/traces"

    ((path, content_type, request),) = received.requests
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    (resource_spans,) = request.resource_spans
    assert attrs(resource_spans.resource)["service.name"] == "agentstore"
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "agentstore"
    assert scope_spans.schema_url.startswith("https://opentelemetry.io/schemas/")
    spans = {s.name: s for s in scope_spans.spans}
    assert set(spans) == {"invoke_agent support-bot", "chat gpt-4o", "execute_tool lookup"}
    root = spans["invoke_agent support-bot"]
    for name in ("chat gpt-4o", "execute_tool lookup"):
        assert spans[name].parent_span_id == root.span_id
        assert spans[name].trace_id == root.trace_id
    chat = attrs(spans["chat gpt-4o"])
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.provider.name"] == "openai"
    assert chat["gen_ai.request.model"] == "gpt-4o"
    assert (chat["gen_ai.usage.input_tokens"], chat["gen_ai.usage.output_tokens"]) == (12, 3)
    assert chat["gen_ai.conversation.id"] == sid
    tool = attrs(spans["execute_tool lookup"])
    assert (tool["gen_ai.tool.name"], tool["gen_ai.tool.call.id"]) == ("lookup", "call_9")
    assert "gen_ai.tool.call.result" not in tool  # content only with --include-content

    # Real times from the events.
    events = anyio.run(read_events, data, sid)
    assert (
        spans["chat gpt-4o"].start_time_unix_nano
        == int(events[0].timestamp.timestamp()) * (10**9) + events[0].timestamp.microsecond * 1000
    )


def test_include_content_sends_arguments_and_results(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    received, url = collector
    data = tmp_path / "data"
    sid = anyio.run(seed, data)
    endpoint = f"{url}/custom/traces"  # a URL with a path is used as it is
    result = invoke(
        "otel", "export", sid, "--endpoint", endpoint, "--include-content", "--data-dir", str(data)
    )
    assert result.exit_code == 0, result.output
    ((path, _, request),) = received.requests
    assert path == "/custom/traces"
    spans = {s.name: s for s in request.resource_spans[0].scope_spans[0].spans}
    tool = attrs(spans["execute_tool lookup"])
    assert tool["gen_ai.tool.call.arguments"] == '{"id":7}'
    assert tool["gen_ai.tool.call.result"] == '{"status":"shipped"}'


def test_a_collector_that_refuses_is_one_line_and_exit_1(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    received, url = collector
    received.status = 400  # not retryable: the exporter gives up at once
    data = tmp_path / "data"
    sid = anyio.run(seed, data)
    result = invoke("--data-dir", str(data), "otel", "export", sid, "--endpoint", url)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: could not send the spans to {url}/v1/traces (is a collector listening there?)"
    )
    assert len(received.requests) == 1


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sid = anyio.run(seed, data)
    bad_url = invoke("--data-dir", str(data), "otel", "export", sid, "--endpoint", "ftp://x")
    assert bad_url.exit_code == 2
    assert bad_url.stderr.startswith("error: invalid --endpoint 'ftp://x'")
    unknown = invoke(
        "--data-dir", str(data), "otel", "export", "zzzz", "--endpoint", "http://127.0.0.1:9"
    )
    assert unknown.exit_code == 1
    assert "zzzz" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1


def test_endpoint_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentstore_cli.otel import endpoint_url

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert endpoint_url(None) == "http://localhost:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")
    assert endpoint_url(None) == "http://c:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/x")
    assert endpoint_url(None) == "http://t:1/x"
    assert endpoint_url("https://h") == "https://h/v1/traces"


def test_the_installed_command_exports_in_a_subprocess(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    received, url = collector
    data = tmp_path / "data"
    sid = anyio.run(seed, data)
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [
            str(bin_dir / "agentstore"),
            "--data-dir",
            str(data),
            "otel",
            "export",
            sid,
            "--endpoint",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(received.requests) == 1

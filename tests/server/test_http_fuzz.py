"""Fuzz the published OpenAPI document against a real server with schemathesis.

Every operation is called with generated input, valid and invalid; no response may be a
5xx, and every response must match the document: status, content type, headers and body
schema. The live follow (`/stream`) is left out: it never ends by design and has tests of
its own. Bounded: a fixed number of derandomized examples per operation and mode.
(Schemathesis's own pytest plugin does not run under pytest 9, so the strategies are
driven with Hypothesis directly.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.http_helpers import ServerProcess, start_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/v1/sessions"),
    ("POST", "/v1/sessions"),
    ("GET", "/v1/sessions/{session_id}"),
    ("DELETE", "/v1/sessions/{session_id}"),
    ("POST", "/v1/sessions/{session_id}/events"),
    ("GET", "/v1/sessions/{session_id}/events"),
    ("GET", "/v1/sessions/{session_id}/state"),
    ("POST", "/v1/sessions/{session_id}/fork"),
    ("GET", "/v1/sessions/{session_id}/stats"),
    ("GET", "/v1/sessions/{session_id}/export"),
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("fuzz") / "data")
    yield srv
    assert srv.stop() == 0
    assert "Traceback" not in srv.log.read_text()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


def test_every_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    published = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert published - set(OPERATIONS) == {("GET", "/v1/sessions/{session_id}/stream")}


# /healthz takes no input, so there is no invalid input to make for it.
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if path != "/healthz" or mode is GenerationMode.POSITIVE
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_server_errors_and_responses_match_the_schema(
    api_schema: schemathesis.BaseSchema,
    fuzz_server: ServerProcess,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    with fuzz_server.client() as http:  # something to find, so not every call is a 404
        for sid in ("s1", "fuzz-session"):
            if http.get(f"/v1/sessions/{sid}").status_code == 404:
                http.post("/v1/sessions", json={"id": sid, "labels": {"k": "v"}})
                http.post(f"/v1/sessions/{sid}/events", json=[{"type": "a"}, {"type": "b"}])
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()

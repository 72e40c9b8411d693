"""Review 13 (HTTP door): a 405's `Allow` names every method the path takes.

RFC 9110 (15.5.6): a 405 must say, in `Allow`, the methods the target supports. The door
named those of the first route matching the path only: `PUT /v1/sessions` was told
`Allow: GET, HEAD` though POST creates a session there, and `PATCH /v1/sessions/ID` was
told `GET, HEAD` though DELETE deletes it. A client that learns from `Allow` (a generic
HTTP tool, a proxy's retry logic) concluded the path is read-only.

A real `agentstore serve` over loopback.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.server.http_helpers import problem, running


# One server for the module: every request here is refused (405) before anything is read
# or written, so no test sees another's; a server per test cost most of each test's time.
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data = tmp_path_factory.mktemp("allow") / "data"
    with running(data) as srv, srv.client() as http:
        yield http


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/sessions", {"GET", "HEAD", "POST"}),
        ("OPTIONS", "/v1/sessions", {"GET", "HEAD", "POST"}),
        ("PATCH", "/v1/sessions/s-1", {"GET", "HEAD", "DELETE"}),
        ("PUT", "/v1/sessions/s-1/events", {"GET", "HEAD", "POST"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
    ],
)
def test_a_405_names_every_method_of_the_path(
    client: httpx.Client, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert problem(response)["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_a_405_of_the_web_ui_s_files_names_no_empty_allow(client: httpx.Client) -> None:
    """The UI's static files (mounted at /) refuse POST with their own 405: no route of
    the API matches, and the answer keeps no `Allow: ` of nothing."""
    response = client.post("/index.html")
    assert response.status_code == 405
    assert response.headers.get("allow", "GET") != ""

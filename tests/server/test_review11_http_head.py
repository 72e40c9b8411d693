"""Review 11 (HTTP door): HEAD answers as GET does, without the body.

The routes took GET only, and a HEAD went on to the web UI's files: 404 for /healthz (an
uptime check that uses HEAD saw the server as down) and for a session that exists (a
client checking one with `curl -I` or `requests.head` was told it did not). RFC 9110: a
server that has GET has HEAD. A streamed answer (a read, a live follow) sends its headers
alone and reads no further, and a HEAD of a live follow holds no follow slot.

A real server process and data directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.server.http_helpers import running


# One server for the module: every test only reads (HEAD, and GET to compare), and each
# checks that no follow slot is left held, which a shared server tells as well (a slot
# leaked by any earlier test would show). A server per test cost 1.6-2 s of start-up each.
@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data = tmp_path_factory.mktemp("head") / "data"
    with running(data) as srv, srv.client() as client:
        assert client.post("/v1/sessions", json={"id": "s"}).status_code == 201
        body = [{"type": "custom", "payload": n} for n in range(3)]
        assert client.post("/v1/sessions/s/events", json=body).status_code == 201
        yield client


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/v1/sessions",
        "/v1/sessions/s",
        "/v1/sessions/s/state",
        "/v1/sessions/s/stats",
        "/v1/sessions/s/events",
        "/v1/sessions/s/export",
        "/v1/sessions/s/stream",
        "/",
    ],
)
def test_head_is_get_without_the_body(http: httpx.Client, path: str) -> None:
    head = http.head(path)
    get = http.get(path) if not path.endswith("/stream") else None
    assert head.status_code == 200, head.headers  # 404 on the old code
    assert head.content == b""
    if get is not None:
        assert head.headers["content-type"] == get.headers["content-type"]
        if "content-length" in get.headers:
            assert head.headers["content-length"] == get.headers["content-length"]
    else:
        assert head.headers["content-type"].startswith("text/event-stream")
    # A HEAD of a live follow held no slot.
    assert http.get("/healthz").json()["streams"] == 0


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/sessions/nope", 404, "session_not_found"),
        ("/v1/sessions/nope/events", 404, "session_not_found"),
        ("/v1/sessions/nope/stream", 404, "session_not_found"),
        ("/v1/sessions/a..b", 400, "invalid_session_id"),
    ],
)
def test_head_of_what_get_refuses_is_the_same_refusal(
    http: httpx.Client, path: str, status: int, code: str
) -> None:
    head = http.head(path)
    get = http.get(path)
    assert (head.status_code, get.status_code) == (status, status)
    assert get.json()["code"] == code
    assert head.headers["content-type"] == "application/problem+json"
    assert head.content == b""

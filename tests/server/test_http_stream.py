"""Live follow over Server-Sent Events: order, resume, heartbeat, limits and slow clients."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.server.http_helpers import ServerProcess, problem, running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("sse") / "data"
    with running(data, "--heartbeat", "0.3", "--max-streams-per-client", "3") as srv:
        yield srv


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


class Sse:
    """Read one SSE response message by message."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        self.lines = response.iter_lines()

    def next(self) -> dict[str, str]:
        """Return the next message or comment block as {"id", "event", "data", "comment"}."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            key = name if name else "comment"
            fields[key] = value.strip()
        raise AssertionError("the stream ended")

    def next_event(self) -> dict[str, Any]:
        """Skip comments and return the next event with its `id:`."""
        while True:
            message = self.next()
            if "data" in message:
                event: dict[str, Any] = orjson.loads(message["data"])
                event["_id"] = message.get("id")
                event["_event"] = message.get("event")
                return event


def _session(http: httpx.Client, count: int = 0) -> str:
    sid: str = http.post("/v1/sessions", json={}).json()["id"]
    if count:
        batch = [{"type": "a", "payload": i} for i in range(1, count + 1)]
        assert http.post(f"/v1/sessions/{sid}/events", json=batch).status_code == 201
    return sid


def test_follow_sends_history_then_live_events(http: httpx.Client, server: ServerProcess) -> None:
    sid = _session(http, 2)
    with server.client() as follower, follower.stream("GET", f"/v1/sessions/{sid}/stream") as r:
        sse = Sse(r)
        assert [sse.next_event()["_id"] for _ in range(2)] == ["1", "2"]
        http.post(f"/v1/sessions/{sid}/events", json={"type": "live", "payload": "now"})
        live = sse.next_event()
        assert (live["_id"], live["type"], live["payload"]) == ("3", "live", "now")
        assert live["sequence_number"] == 3 and live["session_id"] == sid


def test_last_event_id_resumes_after_that_event(http: httpx.Client, server: ServerProcess) -> None:
    sid = _session(http, 5)
    headers = {"last-event-id": "3"}
    with (
        server.client() as follower,
        follower.stream("GET", f"/v1/sessions/{sid}/stream", headers=headers) as r,
    ):
        sse = Sse(r)
        assert [sse.next_event()["payload"] for _ in range(2)] == [4, 5]
        http.post(f"/v1/sessions/{sid}/events", json={"type": "a", "payload": 6})
        assert sse.next_event()["_id"] == "6"
    with (
        server.client() as follower,
        follower.stream("GET", f"/v1/sessions/{sid}/stream", params={"from_seq": 5}) as r,
    ):
        assert Sse(r).next_event()["_id"] == "5"
    # "\xb2" is "²" in Latin-1, a digit to str.isdigit() that int() refuses.
    for garbage in (b"x", b"-1", b"\xb2", b"1\xb9"):
        bad = http.get(f"/v1/sessions/{sid}/stream", headers={"last-event-id": garbage})
        assert (problem(bad)["status"], problem(bad)["code"]) == (400, "invalid_input")


def test_an_idle_follow_gets_heartbeats(http: httpx.Client, server: ServerProcess) -> None:
    sid = _session(http)
    with server.client() as follower, follower.stream("GET", f"/v1/sessions/{sid}/stream") as r:
        sse = Sse(r)
        comments = [sse.next().get("comment") for _ in range(3)]
        assert "keep-alive" in comments


def test_deleting_a_followed_session_ends_the_stream_with_an_error(
    http: httpx.Client, server: ServerProcess
) -> None:
    sid = _session(http, 1)
    with server.client() as follower, follower.stream("GET", f"/v1/sessions/{sid}/stream") as r:
        sse = Sse(r)
        assert sse.next_event()["_id"] == "1"
        assert http.delete(f"/v1/sessions/{sid}").status_code == 204
        error = sse.next_event()
        assert error["_event"] == "error" and error["code"] == "session_not_found"


def test_unknown_session_is_a_404_before_the_stream(http: httpx.Client) -> None:
    assert problem(http.get("/v1/sessions/nobody-here/stream"))["code"] == "session_not_found"
    assert problem(http.get("/v1/sessions/bad..id/stream"))["code"] == "invalid_session_id"


def _streams(http: httpx.Client) -> int:
    count: int = http.get("/healthz").json()["streams"]
    return count


def _wait_streams(http: httpx.Client, expected: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _streams(http) != expected:
        assert time.monotonic() < deadline, f"streams stayed at {_streams(http)}"
        time.sleep(0.05)


def test_per_client_stream_limit(http: httpx.Client, server: ServerProcess) -> None:
    sid = _session(http)
    _wait_streams(http, 0)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(server.client()) for _ in range(4)]
        first = stack.enter_context(contextlib.ExitStack())
        first.enter_context(clients[0].stream("GET", f"/v1/sessions/{sid}/stream"))
        for c in clients[1:3]:
            stack.enter_context(c.stream("GET", f"/v1/sessions/{sid}/stream"))
        _wait_streams(http, 3)
        busy = clients[3].get(f"/v1/sessions/{sid}/stream")
        assert busy.status_code == 429 and problem(busy)["code"] == "server_busy"
        first.close()
        clients[0].close()
        _wait_streams(http, 2)  # the server noticed the client left and freed its slot
        with clients[3].stream("GET", f"/v1/sessions/{sid}/stream") as again:
            assert again.status_code == 200


def _follower_that_never_reads(url: str, sid: str) -> socket.socket:
    """A raw connection that asks for a session's live stream, then reads nothing (a tiny
    receive buffer, so the server's sends back up at once)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect((host, int(port)))
    stuck.sendall(f"GET /v1/sessions/{sid}/stream HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return stuck


def test_a_follower_that_never_reads_is_dropped_with_bounded_memory(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--stream-send-timeout", "1") as srv, srv.client() as http:
        sid = _session(http, 1)
        payload = "x" * 10_000
        batch = [{"type": "big", "payload": payload} for _ in range(50)]  # ~500 kB a request
        http.post(f"/v1/sessions/{sid}/events", json=batch)  # warm up the request path
        before = srv.rss_kib()
        stuck = _follower_that_never_reads(srv.url, sid)
        try:
            _wait_streams(http, 1)
            for _ in range(240):  # ~120 MB appended while the follower reads nothing
                assert http.post(f"/v1/sessions/{sid}/events", json=batch).status_code == 201
            _wait_streams(http, 0, timeout=15)
            growth_mb = (srv.rss_kib() - before) / 1024
            # Holding what the follower did not read would take over 120 MB.
            assert growth_mb < 40, f"the server grew by {growth_mb:.0f} MB"
            assert http.get(f"/v1/sessions/{sid}").json()["event_count"] == 12051
            # The connection itself is dropped, not left open waiting for the unread bytes
            # (which would also hold a graceful shutdown up for its full 30 s).
            started = time.monotonic()
            assert srv.stop() == 0
            assert time.monotonic() - started < 10
        finally:
            stuck.close()
        assert "did not read in time" in srv.log.read_text()


def test_sigterm_ends_a_follow_whose_client_stopped_reading_at_once(tmp_path: Path) -> None:
    # Ending the stream politely waits for the client to take the unsent bytes: one that
    # never reads held the graceful shutdown up for the whole --stream-send-timeout.
    with running(tmp_path / "data") as srv, srv.client() as http:
        sid = _session(http, 1)
        stuck = _follower_that_never_reads(srv.url, sid)
        try:
            _wait_streams(http, 1)
            batch = [{"type": "big", "payload": "x" * 10_000} for _ in range(50)]
            for _ in range(30):  # ~15 MB: far more than the socket buffers hold
                assert http.post(f"/v1/sessions/{sid}/events", json=batch).status_code == 201
            started = time.monotonic()
            assert srv.stop() == 0
            assert time.monotonic() - started < 10
        finally:
            stuck.close()

"""Review 11's leftover: the HTTP door answered overload with uvicorn's plain-text 503.

`agentstore serve` gave uvicorn `limit_concurrency` (4 x --max-streams), which counts open
connections, idle keep-alive ones included, as well as requests, and answers past it with
`Service Unavailable` in plain text before the app runs: no problem JSON, no stable code.
The limit is the server's own now: requests in flight (idle connections cost nothing),
refused with RFC 9457 problem JSON, `server_busy`, like every other error.

A real server process (--max-streams 1: at most 4 requests in flight) and real sockets; a
request is held in flight by sending its headers and not its body.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.server.http_helpers import ServerProcess, problem, running


@contextlib.contextmanager
def _held_requests(srv: ServerProcess, n: int) -> Iterator[None]:
    """Hold `n` requests in flight: their headers sent, their bodies not."""
    where = urlsplit(srv.url)
    head = (
        b"POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
    )
    sockets = [socket.create_connection((where.hostname, where.port)) for _ in range(n)]
    try:
        for sock in sockets:
            sock.sendall(head)
        yield
    finally:
        for sock in sockets:
            sock.close()


def _busy_answer(http: httpx.Client) -> httpx.Response:
    """Ask until the server answers busy (the held requests reach the app in their time)."""
    deadline = time.monotonic() + 20
    while True:
        response = http.get("/v1/sessions")
        if response.status_code != 200 or time.monotonic() > deadline:
            return response


def test_past_the_limit_the_answer_is_problem_json(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--max-streams", "1") as srv, srv.client() as http:
        with _held_requests(srv, 4):
            response = _busy_answer(http)
            assert response.status_code == 429, response.text
            body = problem(response)
            assert body["code"] == "server_busy"
            assert "retry" in body["detail"]
            # The health check still answers: a busy server is not a dead one.
            assert http.get("/healthz").status_code == 200
        # The held requests ended: requests are served again.
        deadline = time.monotonic() + 20
        while (status := http.get("/v1/sessions").status_code) != 200:
            assert time.monotonic() < deadline, status
    assert "Traceback" not in srv.log.read_text()


def test_idle_keep_alive_connections_do_not_refuse_requests(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--max-streams", "1") as srv:
        clients = [srv.client() for _ in range(8)]
        try:
            for client in clients:  # each leaves its connection open, idle
                assert client.get("/v1/sessions").status_code == 200
            for client in clients:
                response = client.post("/v1/sessions", json={})
                assert response.status_code == 201, response.text
        finally:
            for client in clients:
                client.close()

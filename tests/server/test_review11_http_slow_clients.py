"""Review 11 (HTTP door): a client that stalls must not hold a place among the requests in
flight for good.

Since 93c5610 the HTTP door refuses requests past 4 x --max-streams in flight with 429
`server_busy`. A request is in flight until its response is over, so a client that stops
reading a streamed read (`curl .../export | less`, left open), or that sends its headers
and never the whole body (a hung process), held its place forever: a few of them refused
every other request, for good. A read whose client leaves a chunk unread for
--stream-send-timeout is dropped now, as a live follower is; a request body that stalls
for --body-timeout is refused (408 problem JSON `request_timeout`) and nothing is written.
And a connection whose request headers do not come whole within --body-timeout (none at
all, or half) is closed: before the app, and so the token check, sees a request, such
connections stayed open for good. And a stalled body no longer holds a SIGTERM for the
whole --body-timeout.

A real server process (--max-streams 1: at most 4 requests in flight), real sockets.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

import agentstore
from tests.server.http_helpers import ServerProcess, running, start_server

pytestmark = pytest.mark.slow

_LIMIT = 4  # requests in flight with --max-streams 1


def _seed(data_dir: Path) -> str:
    """A session of 40 MB: far more than the socket buffers hold."""
    with agentstore.open_sync(data_dir) as store:
        sid = store.create_session(session_id="long").id
        blob = "x" * 4_000
        for _ in range(10):
            store.append_many(sid, [agentstore.new_event("custom", blob) for _ in range(1_000)])
    return sid


def _connect(srv: ServerProcess) -> socket.socket:
    where = urlsplit(srv.url)
    sock = socket.create_connection((where.hostname, where.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(20)
    return sock


@contextlib.contextmanager
def _sockets(srv: ServerProcess, n: int) -> Iterator[list[socket.socket]]:
    sockets = [_connect(srv) for _ in range(n)]
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _served_again_within(http: httpx.Client, seconds: float) -> float:
    """Ask until a request is served; return how long that took (fail past `seconds`)."""
    started = time.monotonic()
    while (response := http.get("/v1/sessions")).status_code != 200:
        assert response.status_code == 429, response.text
        took = time.monotonic() - started
        assert took < seconds, f"still refused after {took:.1f} s: {response.text}"
        time.sleep(0.1)
    return time.monotonic() - started


def _busy(http: httpx.Client) -> bool:
    """Tell whether the server refuses requests now (the held ones reach it in their time)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if http.get("/v1/sessions").status_code == 429:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("path", ["events", "events?format=jsonl", "export"])
def test_a_read_whose_client_stopped_reading_is_dropped(tmp_path: Path, path: str) -> None:
    sid = _seed(tmp_path / "data")
    args = ("--max-streams", "1", "--stream-send-timeout", "1")
    with running(tmp_path / "data", *args) as srv, srv.client() as http:
        request = f"GET /v1/sessions/{sid}/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        with _sockets(srv, _LIMIT) as readers:
            for sock in readers:
                sock.sendall(request.encode())
                assert sock.recv(1024).startswith(b"HTTP/1.1 200")  # it reads... then stops
            assert _busy(http)
            # The stalled reads are dropped after about a second; on the old code they
            # held their places until the clients went away: 429 for everyone meanwhile.
            _served_again_within(http, 15)
    log = srv.log.read_text()
    assert "did not read in time" in log
    assert "Traceback" not in log


def _drain(sock: socket.socket) -> bytes:
    """Read what the server sent until it closed the connection."""
    got = bytearray()
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 20):
            got += chunk
    return bytes(got)


def test_a_request_body_that_stalls_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    args = ("--max-streams", "1", "--body-timeout", "1")
    with running(tmp_path / "data", *args) as srv, srv.client() as http:
        assert http.post("/v1/sessions", json={"id": "s"}).status_code == 201
        head = (
            "POST /v1/sessions/s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            '{"type": "custom", '  # ... and the rest never comes
        )
        with _sockets(srv, _LIMIT) as held:
            for sock in held:
                sock.sendall(head.encode())
            # Each is answered 408 once its body stalled: all of them were in flight at
            # once (none was refused busy), and their places are free again at once. On
            # the old code they stayed in flight until they hung up: 429 for everyone.
            for sock in held:
                answer = _drain(sock)
                status, _, rest = answer.partition(b"\r\n")
                assert status == b"HTTP/1.1 408 Request Timeout", answer
                body = orjson.loads(rest.partition(b"\r\n\r\n")[2])
                assert body["code"] == "request_timeout"
                assert "--body-timeout" in body["detail"]
            assert http.get("/v1/sessions").status_code == 200
        assert http.get("/v1/sessions/s").json()["event_count"] == 0
    assert "Traceback" not in srv.log.read_text()


def test_a_slow_body_that_keeps_coming_and_a_long_follow_are_not_cut(tmp_path: Path) -> None:
    # The timeout is for a body that stalls, not for a slow one; and once a request's body
    # is whole (a live follow has none) the connection may stay quiet as long as it likes.
    args = ("--body-timeout", "1", "--heartbeat", "60")
    with running(tmp_path / "data", *args) as srv, srv.client() as http:
        assert http.post("/v1/sessions", json={"id": "s"}).status_code == 201
        with http.stream("GET", "/v1/sessions/s/stream") as follow:
            assert follow.status_code == 200
            lines = follow.iter_lines()
            body = b'[{"type": "custom", "payload": 1}, {"type": "custom", "payload": 2}]'
            with _sockets(srv, 1) as (sock,):
                sock.sendall(
                    b"POST /v1/sessions/s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body)
                )
                for at in range(0, len(body), len(body) // 4 + 1):  # 2 s in all
                    time.sleep(0.5)
                    sock.sendall(body[at : at + len(body) // 4 + 1])
                assert sock.recv(4096).startswith(b"HTTP/1.1 201")
            seen: list[str] = []
            for line in lines:
                if line.startswith("id:"):
                    seen.append(line)
                    if len(seen) == 2:
                        break
            assert seen == ["id: 1", "id: 2"]


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
    ids=["nothing", "half-the-headers"],
)
def test_a_connection_whose_headers_never_come_is_closed(
    tmp_path: Path, token_file: Path, sent: bytes
) -> None:
    # Before the app sees a request there is no token check: a connection that sent no
    # request, or stopped in its headers, stayed open for good, and anyone who could reach
    # the port could hold thousands (file descriptors: the store's files too).
    args = ("--body-timeout", "1", "--token-file", str(token_file))
    with running(tmp_path / "data", *args) as srv:
        with _sockets(srv, 1) as (idle,):
            idle.sendall(sent)
            started = time.monotonic()
            assert _drain(idle) == b""  # closed, without an answer (the old code: timeout)
            assert time.monotonic() - started < 10
        # A client that sends its request in time is served as before, also on a
        # connection it keeps alive across requests.
        token = token_file.read_text().strip()
        request = (
            f"GET /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        with _sockets(srv, 2) as clients:
            for sock in clients:
                for _ in range(2):
                    sock.sendall(request)
                    assert _response(sock).startswith(b"HTTP/1.1 200")
    assert "Traceback" not in srv.log.read_text()


def _response(sock: socket.socket) -> bytes:
    """Read one response with a Content-Length, whole."""
    got = b""
    while b"\r\n\r\n" not in got:
        got += sock.recv(4096)
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("t" * 32 + "\n")
    return path


def test_sigterm_does_not_wait_for_a_stalled_body(tmp_path: Path) -> None:
    # A body that stalls held the shutdown for the whole --body-timeout (29.6 s of 30):
    # nothing of it is acknowledged, so once the server stops a stall of 1 s refuses it.
    # A body still arriving is not cut: its append finishes and is stored.
    srv = start_server(tmp_path / "data")
    try:
        with srv.client() as http:
            assert http.post("/v1/sessions", json={"id": "s"}).status_code == 201
        body = b'[{"type": "custom", "payload": 1}, {"type": "custom", "payload": 2}]'
        head = (
            b"POST /v1/sessions/s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        with _sockets(srv, 2) as (stalled, arriving):
            for sock in (stalled, arriving):
                sock.sendall(head)
                # uvicorn says 100 Continue once the app waits for the body: in flight.
                assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
                sock.sendall(body[:10])
            started = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            arriving.sendall(body[10:])
            assert _response(arriving).startswith(b"HTTP/1.1 201")
            assert _drain(stalled).startswith(b"HTTP/1.1 408")
            assert srv.proc.wait(30) == 0
            took = time.monotonic() - started
    finally:
        srv.stop()
    assert took < 10, f"SIGTERM took {took:.1f} s with a stalled body in flight"
    with agentstore.open_sync(tmp_path / "data") as store:
        assert [e.payload for e in store.replay("s")] == [1, 2]
    log = srv.log.read_text()
    assert "the store is closed" in log
    assert "Traceback" not in log

"""Review 12 (HTTP door): an answer given before the request body came whole closes the
connection, after a bounded lingering close.

A body over --max-body-bytes was answered 413, but the connection was kept alive and
uvicorn went on parsing the rest of the body to throw it away: a client that declared
more than it sent, then sent its next request, got the 413 and then nothing, on a
connection held open for good (its request taken for body bytes); a chunked body cut at
the limit made the next request a plain-text `400 Invalid HTTP request`; and a declared
`Content-Length` of gigabytes was read to its end. The same for any answer that does
not read the body (a 401 on a token server). Now such an answer says `Connection: close`,
the server half-closes once it is out, throws away what still comes for at most
min(--body-timeout, 5 s) and 64 MiB, and closes: never a request parsed from the rest.

A real `agentstore serve`, raw sockets on loopback.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from agentstore.server.http_protocol import LINGER_BYTES
from tests.server.http_helpers import ServerProcess, running

pytestmark = pytest.mark.slow

_LIMIT = 1024
_TOKEN = "t" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No token; --body-timeout 1: a lingering close lasts at most 1 s."""
    data = tmp_path_factory.mktemp("limit") / "data"
    with running(data, "--max-body-bytes", str(_LIMIT), "--body-timeout", "1") as srv:
        yield srv


def _connect(srv: ServerProcess) -> socket.socket:
    where = urlsplit(srv.url)
    sock = socket.create_connection((where.hostname, where.port))
    sock.settimeout(10)
    return sock


def _head(srv: ServerProcess, request_line: str, *headers: str) -> bytes:
    lines = [request_line, f"Host: {urlsplit(srv.url).netloc}", *headers, "", ""]
    return "\r\n".join(lines).encode()


def _answer(
    sock: socket.socket, extra: bytearray | None = None
) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Read one answer with a Content-Length: status line, headers, body. Bytes read past
    it go to `extra` (answers to pipelined requests), or fail the test without it."""
    data = bytes(extra or b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"EOF before an answer's headers: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines)}
    size = int(headers[b"content-length"])
    while len(rest) < size:
        chunk = sock.recv(65536)
        assert chunk, "EOF inside an answer's body"
        rest += chunk
    if extra is None:
        assert len(rest) == size, f"more than one answer: {rest!r}"
    else:
        extra[:] = rest[size:]
    return status, headers, rest[:size]


def _rest(sock: socket.socket) -> bytes:
    """Everything the server still sends until it closes (a timeout fails the test)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Tell whether the server closes its side for good (a write fails) within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.send(b"x" * 1000)
        except OSError:  # EPIPE or ECONNRESET: the server's socket is gone
            return True
        time.sleep(0.05)
    return False


def test_a_body_declared_over_the_limit_and_sent_in_part_closes(server: ServerProcess) -> None:
    """The client's next request, sent after part of the body, is never parsed: 413 with
    `Connection: close`, then EOF and the socket closed (the old server kept the
    connection open for good, waiting for the rest of the declared body)."""
    with _connect(server) as sock:
        head = _head(server, "POST /v1/sessions HTTP/1.1", "Content-Length: 100000")
        sock.sendall(head + b"y" * 10)
        status, headers, _ = _answer(sock)
        assert status.startswith(b"HTTP/1.1 413"), status
        assert headers[b"connection"] == b"close"
        sock.sendall(_head(server, "GET /healthz HTTP/1.1"))
        assert _rest(sock) == b""  # no answer to the next request: EOF
        assert _closed_within(sock, 5)


def test_a_chunked_body_over_the_limit_closes(server: ServerProcess) -> None:
    """A chunked body cut at the limit: 413 with `Connection: close`, and what follows is
    not parsed (the old server answered it `400 Invalid HTTP request` in plain text)."""
    with _connect(server) as sock:
        sock.sendall(_head(server, "POST /v1/sessions HTTP/1.1", "Transfer-Encoding: chunked"))
        for _ in range(2):
            sock.sendall(b"400\r\n" + b"z" * 1024 + b"\r\n")
        status, headers, body = _answer(sock)
        assert status.startswith(b"HTTP/1.1 413"), status
        assert b'"code":"payload_too_large"' in body
        assert headers[b"connection"] == b"close"
        sock.sendall(_head(server, "GET /healthz HTTP/1.1"))
        assert _rest(sock) == b""


def test_the_rest_of_a_huge_body_is_not_read_without_end(server: ServerProcess) -> None:
    """After the 413, the server throws away at most LINGER_BYTES before it closes (the
    old server read a declared 10 GB to its end; here the client gives up at 4 times)."""
    with _connect(server) as sock:
        sock.sendall(_head(server, "POST /v1/sessions HTTP/1.1", "Content-Length: 10000000000"))
        status, _, _ = _answer(sock)
        assert status.startswith(b"HTTP/1.1 413"), status
        block = b"w" * (1 << 20)
        sent = 0
        refused = False
        while sent < 4 * LINGER_BYTES and not refused:
            try:
                sent += sock.send(block)
            except OSError:  # EPIPE or ECONNRESET: the server closed
                refused = True
        assert refused, f"the server read all {sent} bytes"
        # Plus what the two sockets' buffers held when the server closed.
        assert sent < LINGER_BYTES + 64 * (1 << 20), sent


def test_a_client_that_sends_its_whole_body_still_reads_the_413(server: ServerProcess) -> None:
    """The rest of the body (2 MB) is thrown away, not answered with a reset: a client
    that writes its whole request before reading (http.client, most scripts) gets to
    read the 413. Closing at once made its write fail (EPIPE)."""
    with _connect(server) as sock:
        sock.sendall(_head(server, "POST /v1/sessions HTTP/1.1", "Content-Length: 2000000"))
        status, headers, _ = _answer(sock)  # answered at the headers: the body is unread
        assert status.startswith(b"HTTP/1.1 413"), status
        assert headers[b"connection"] == b"close"
        sock.sendall(b"x" * 2_000_000)  # raises if the server reset the connection
        assert _rest(sock) == b""


def test_a_refused_request_whose_body_came_whole_keeps_the_connection(
    server: ServerProcess,
) -> None:
    """Nothing unread, nothing closed: two requests in one write, the first refused with
    400 after its body was read, both answered on the same connection."""
    with _connect(server) as sock:
        bad = _head(server, "POST /v1/sessions HTTP/1.1", "Content-Length: 5") + b"{nope"
        sock.sendall(bad + _head(server, "GET /healthz HTTP/1.1"))
        extra = bytearray()
        status, headers, _ = _answer(sock, extra)
        assert status.startswith(b"HTTP/1.1 400"), status
        assert b"connection" not in headers
        status, _, body = _answer(sock, extra)
        assert status.startswith(b"HTTP/1.1 200"), status
        assert b'"status":"ok"' in body


def test_a_401_before_a_chunked_body_closes(tmp_path: Path) -> None:
    """Any answer that leaves the body unread closes, not only a 413: a token server's
    401 for a chunked body still coming (the old server read it for as long as it came)."""
    token_file = tmp_path / "token"
    token_file.write_text(_TOKEN)
    args = ("--token-file", str(token_file), "--body-timeout", "1")
    with running(tmp_path / "data", *args) as srv, _connect(srv) as sock:
        sock.sendall(_head(srv, "POST /v1/sessions HTTP/1.1", "Transfer-Encoding: chunked"))
        sock.sendall(b"10\r\n" + b"a" * 16 + b"\r\n")
        status, headers, _ = _answer(sock)
        assert status.startswith(b"HTTP/1.1 401"), status
        assert headers[b"connection"] == b"close"
        assert _rest(sock) == b""
        assert _closed_within(sock, 5)

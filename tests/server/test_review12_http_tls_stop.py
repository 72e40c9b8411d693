"""Review 12 (HTTP door): over TLS, a client that keeps its connection open does not hold
SIGTERM for 30 s.

uvicorn closes each idle connection when it stops, and waits until all are gone. Over TLS
asyncio's close waits for the client's own close_notify, up to 30 s: a keep-alive client
that was not reading (a browser tab, a pooled connection) held the stop that long, the
store open meanwhile. Now a connection still there a second after its close is dropped.
Also when it was closed before the stop (a lingering close after a 413): a second close
of asyncio's TLS transport forgets its connection, so that the drop did nothing.

A real `agentstore serve --tls-cert --tls-key` (a self-signed certificate from openssl).
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.server.http_helpers import start_server

pytestmark = pytest.mark.slow


def _read_answer(sock: ssl.SSLSocket) -> bytes:
    """One answer with a Content-Length, whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head = data.partition(b"\r\n\r\n")[0].lower()
    size = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
    while len(data) < len(head) + 4 + size:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


@pytest.mark.parametrize("refused_body", [False, True], ids=["idle", "after-413"])
def test_a_quiet_tls_client_does_not_hold_the_stop(
    tmp_path: Path, certificate: tuple[Path, Path], refused_body: bool
) -> None:
    """The client answers a request, then neither reads nor closes: SIGTERM ends the
    server within a few seconds (the old one took 30 s). `after-413`: its connection was
    closed already, after the lingering close of a refused body."""
    cert, key = certificate
    args = ("--tls-cert", str(cert), "--tls-key", str(key))
    srv = start_server(tmp_path / "data", *args, "--max-body-bytes", "1024", "--body-timeout", "1")
    try:
        where = urlsplit(srv.url)
        context = ssl.create_default_context(cafile=str(cert))
        raw = socket.create_connection((where.hostname, where.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            host = f"Host: {where.netloc}\r\n"
            sock.sendall(f"GET /healthz HTTP/1.1\r\n{host}\r\n".encode())
            assert _read_answer(sock).startswith(b"HTTP/1.1 200")
            if refused_body:
                head = f"POST /v1/sessions HTTP/1.1\r\n{host}Content-Length: 100000\r\n\r\n"
                sock.sendall(head.encode() + b"y" * 10)
                answer = _read_answer(sock)
                assert answer.startswith(b"HTTP/1.1 413"), answer
                # The server closes after its linger (--body-timeout 1): wait for that
                # close (a TLS close_notify, read as EOF) before stopping it.
                while sock.recv(65536):
                    pass
            started = time.monotonic()
            assert srv.stop(timeout=15) == 0
            assert time.monotonic() - started < 10
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()

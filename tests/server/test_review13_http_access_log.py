"""Review 13 (HTTP door): the access log shows a client's text escaped, never as characters
a terminal or a log viewer acts on.

The text access log escaped C0 controls in the path (a `%0a` could have started a forged
line, a `%1b` driven a terminal), but not the rest of what `agentstore_cli.sanitize`
counts as unsafe: a `%C2%9B` reached the log as U+009B (a CSI), `%E2%80%AE` as a bidi
override that shows the rest of the line reversed, `%E2%80%A8` as a line separator (a new
line to many viewers). The client address was not escaped at all: behind a proxy named by
`--forwarded-allow-ips` it is what `X-Forwarded-For` says, bytes 0x80-0xff included. The
JSON log kept them raw too (`jq -r` prints them); there they are `\\uXXXX` now (the same
JSON).

A real `agentstore serve`; its log is read once it has stopped (all written).
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from tests.server.http_helpers import running

_PATH = "/v1/sessions/a%C2%9B31m%E2%80%AEb%E2%80%A8c%1bd"
_UNSAFE = ["\x9b", "\u202e", "\u2028", "\x1b"]


def _get_raw(url: str, path: str, extra: bytes = b"") -> bytes:
    """A GET written byte for byte (httpx would refuse the header's bytes), its answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        host = f"{parts.hostname}:{parts.port}".encode()
        sock.sendall(
            b"GET "
            + path.encode()
            + b" HTTP/1.1\r\nHost: "
            + host
            + b"\r\n"
            + extra
            + b"Connection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_the_text_access_log_escapes_what_a_terminal_would_act_on(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--forwarded-allow-ips", "127.0.0.1") as srv:
        assert _get_raw(srv.url, _PATH).startswith(b"HTTP/1.1 ")
        forged = b"X-Forwarded-For: 198.51.100.7\x9b2J\xe2\x80\xae\r\n"
        assert _get_raw(srv.url, "/healthz", forged).startswith(b"HTTP/1.1 200")
    log = srv.log.read_text(encoding="utf-8")
    for unsafe in _UNSAFE:
        assert unsafe not in log, f"{unsafe!r} reached the log: {log}"
    # U+2028 split the line in two for `splitlines` (and many viewers): one line each now
    lines = [line for line in log.splitlines() if "/v1/sessions/" in line or "198.51" in line]
    assert len(lines) == 2, log
    assert '"GET /v1/sessions/a\\x9b31m\\u202eb\\u2028c\\x1bd"' in lines[0]
    # The header's bytes as uvicorn reads them (latin-1): each byte one escaped character.
    assert ' 198.51.100.7\\x9b2J\xe2\\x80\xae:0 "GET /healthz" 200 ' in lines[1], lines[1]


def test_the_json_access_log_escapes_them_as_the_same_json(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--log-format", "json") as srv:
        assert _get_raw(srv.url, _PATH).startswith(b"HTTP/1.1 ")
    raw = srv.log.read_text(encoding="utf-8")
    for unsafe in _UNSAFE:
        assert unsafe not in raw, f"{unsafe!r} reached the log"
    access = [
        orjson.loads(line)
        for line in raw.splitlines()
        if line.startswith("{") and '"kind":"access"' in line
    ]
    paths = [a["path"] for a in access if a["path"] != "/healthz"]
    assert paths == ["/v1/sessions/a\x9b31m\u202eb\u2028c\x1bd"]  # the same JSON

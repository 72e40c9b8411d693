"""Review 11 (HTTP door): a follower that does not read, and a long read, cost bounded
bytes, not a bounded number of events of any size.

A live follow's memory was bounded in events: a queue of 64 for the connection, and
catch-up reads of 64 held until their last event was taken. With events of megabytes (a
model's long answer, a tool's output) that is 64 x 3 MB twice over: four followers that
did not read took the server from 60 MB to 1.7 GB until they were dropped. The queue is
bounded in bytes now (Limits.stream_queue_bytes, 4 MiB: one event always fits) and a catch-up
read aims at 1 MiB of events, from a first read of one. A read (GET .../events, .../export)
read 500 events a page, held and encoded whole: one read of a session of 240 MB took the
server to 1.2 GB. Its pages aim at 4 MiB now, from a first page of 8 events.

A real server process; the session's events are 3 MB each; the followers are real sockets
that read nothing; the server's peak memory (VmHWM) is read once they were dropped.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import agentstore
from tests.server.http_helpers import running

pytestmark = pytest.mark.slow

_EVENTS = 60
_SIZE = 3_000_000


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _seed(data_dir: Path) -> None:
    with agentstore.open_sync(data_dir) as store:
        sid = store.create_session(session_id="big").id
        for _ in range(_EVENTS):
            store.append(sid, agentstore.new_event("custom", "x" * _SIZE))


def test_a_read_of_large_events_holds_a_few_at_a_time(tmp_path: Path) -> None:
    _seed(tmp_path / "data")
    with running(tmp_path / "data") as srv, srv.client(timeout=60) as http:
        before = _peak_mib(srv.proc.pid)
        for path in ("events", "events?format=jsonl", "export"):
            with http.stream("GET", f"/v1/sessions/big/{path}") as response:
                got = sum(len(chunk) for chunk in response.iter_raw())
            assert got > _EVENTS * _SIZE
        growth = _peak_mib(srv.proc.pid) - before
    # The old code: ~900 MB (the 60 events in one page, encoded, then framed).
    assert growth < 400, f"the server's peak grew by {growth:.0f} MB"


def test_followers_that_do_not_read_large_events_hold_bounded_bytes(tmp_path: Path) -> None:
    _seed(tmp_path / "data")
    with running(tmp_path / "data", "--stream-send-timeout", "3") as srv, srv.client() as http:
        before = _peak_mib(srv.proc.pid)
        where = urlsplit(srv.url)
        followers = []
        try:
            for _ in range(4):
                sock = socket.create_connection((where.hostname, where.port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(b"GET /v1/sessions/big/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                followers.append(sock)
            deadline = time.monotonic() + 10
            while http.get("/healthz").json()["streams"] < 4:
                assert time.monotonic() < deadline
            # They read nothing: after --stream-send-timeout they are dropped.
            deadline = time.monotonic() + 30
            while http.get("/healthz").json()["streams"] > 0:
                assert time.monotonic() < deadline
            growth = _peak_mib(srv.proc.pid) - before
        finally:
            for sock in followers:
                sock.close()
    # The old code: ~1,400 MB (each follower held its 60 events twice: page and queue).
    assert growth < 400, f"the server's peak grew by {growth:.0f} MB"
    assert "did not read in time" in srv.log.read_text()

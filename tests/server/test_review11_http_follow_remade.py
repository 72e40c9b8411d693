"""Review 11 (HTTP door): a live follow of a session deleted and made again under its id.

The follow reads its session a page at a time and waits for the next append between
pages, each a read of its own. A session deleted and created again meanwhile (a client
that resets a session by id, an import of another session under its id) went on with the
other session's events from the next sequence number: the follower saw events 1-3 of the
first, then 4 and 5 of the second, as one history, and never 1-3 of the second. It ends
now with `event: error` (`session_not_found`), as a follow of a deleted session does, and
a client that follows again gets the new session from its start.

A real server process and data directory, the follower on a thread of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.server.http_helpers import ServerProcess, running


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data") as srv:
        yield srv


def _append(http: httpx.Client, payloads: range) -> None:
    body = [{"type": "custom", "payload": n} for n in payloads]
    assert http.post("/v1/sessions/s/events", json=body).status_code == 201


def test_a_session_made_again_while_followed_ends_the_follow(server: ServerProcess) -> None:
    with server.client() as http:
        assert http.post("/v1/sessions", json={"id": "s"}).status_code == 201
        _append(http, range(3))
        seen: list[tuple[str, object]] = []
        caught_up = threading.Event()

        def follow() -> None:
            with (
                server.client() as client,
                client.stream("GET", "/v1/sessions/s/stream") as response,
            ):
                kind = "message"
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        data = orjson.loads(line.removeprefix("data: "))
                        seen.append((kind, data.get("payload", data.get("code"))))
                        if len(seen) == 3:
                            caught_up.set()
                        if kind == "error" or len(seen) == 5:
                            return

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        assert caught_up.wait(15)
        assert http.delete("/v1/sessions/s").status_code == 204
        assert http.post("/v1/sessions", json={"id": "s"}).status_code == 201
        _append(http, range(100, 105))
        follower.join(15)
        assert not follower.is_alive()
        # The old code: [..., ('message', 103), ('message', 104)]: two sessions as one.
        assert seen == [
            ("message", 0),
            ("message", 1),
            ("message", 2),
            ("error", "session_not_found"),
        ]
        # Following again gives the new session whole.
        with http.stream("GET", "/v1/sessions/s/stream") as response:
            ids = []
            for line in response.iter_lines():
                if line.startswith("data: "):
                    ids.append(orjson.loads(line.removeprefix("data: "))["payload"])
                    if len(ids) == 5:
                        break
        assert ids == [100, 101, 102, 103, 104]
    assert "Traceback" not in server.log.read_text()


def test_a_follow_that_names_the_creation_time_is_refused_for_another_session(
    server: ServerProcess,
) -> None:
    # A client that resumes (after a restart) sends the session's created_at as it read
    # it: another session made under that id since is refused, not resumed into.
    with server.client() as http:
        first = http.post("/v1/sessions", json={"id": "s"}).json()["created_at"]
        assert http.delete("/v1/sessions/s").status_code == 204
        now = http.post("/v1/sessions", json={"id": "s"}).json()["created_at"]
        refused = http.get("/v1/sessions/s/stream", params={"created_at": first, "from_seq": 3})
        assert refused.status_code == 404
        assert refused.json()["code"] == "session_not_found"
        naive = http.get("/v1/sessions/s/stream", params={"created_at": "2026-01-02T03:04:05"})
        assert naive.status_code == 400
        assert "zone" in naive.json()["detail"]
        with http.stream("GET", "/v1/sessions/s/stream", params={"created_at": now}) as response:
            assert response.status_code == 200

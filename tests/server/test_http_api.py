"""The HTTP/JSON API over a real `agentstore serve` process, with a real HTTP client."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import agentstore
from tests.server.http_helpers import ServerProcess, problem, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module; each test works in sessions of its own."""
    srv = start_server(tmp_path_factory.mktemp("http") / "data", "--max-batch", "50")
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def new_session(http: httpx.Client, **body: Any) -> str:
    response = http.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    sid: str = response.json()["id"]
    assert response.headers["location"] == f"/v1/sessions/{sid}"
    return sid


def append(http: httpx.Client, sid: str, body: Any, **params: Any) -> httpx.Response:
    return http.post(f"/v1/sessions/{sid}/events", json=body, params=params)


def events_of(http: httpx.Client, sid: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get(f"/v1/sessions/{sid}/events", params=params)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_session_lifecycle(http: httpx.Client) -> None:
    sid = new_session(http, name="worker", labels={"env": "test"})
    got = http.get(f"/v1/sessions/{sid}").json()
    assert got["name"] == "worker" and got["labels"] == {"env": "test"}
    assert got["event_count"] == 0
    assert http.delete(f"/v1/sessions/{sid}").status_code == 204
    gone = problem(http.get(f"/v1/sessions/{sid}"))
    assert gone["status"] == 404 and gone["code"] == "session_not_found"
    assert gone["details"] == {"session_id": sid}


def test_create_with_an_id_twice_is_a_conflict(http: httpx.Client) -> None:
    new_session(http, id="fixed-id-1")
    again = problem(http.post("/v1/sessions", json={"id": "fixed-id-1"}))
    assert (again["status"], again["code"]) == (409, "session_exists")


@pytest.mark.parametrize(
    "budget", [{"max_tokens": True}, {"max_cost_usd": "5"}, {"max_tokens": -1}]
)
def test_a_budget_of_no_number_is_a_400_and_creates_nothing(
    http: httpx.Client, budget: dict[str, Any]
) -> None:
    refused = problem(http.post("/v1/sessions", json={"id": "budgeted", "budget": budget}))
    assert (refused["status"], refused["code"]) == (400, "invalid_input")
    assert http.get("/v1/sessions/budgeted").status_code == 404


def test_append_one_then_a_batch_numbers_them_in_order(http: httpx.Client) -> None:
    sid = new_session(http)
    one = append(http, sid, {"type": "user_message", "payload": {"content": "hi"}})
    assert one.status_code == 201
    assert one.json()["last_seq"] == 1
    batch = append(
        http,
        sid,
        {
            "events": [
                {"type": "llm_request", "metadata": {"model": "m", "tokens_in": 7}},
                {"type": "llm_response", "metadata": {"model": "m", "tokens_out": 3}},
            ],
            "expected_seq": 1,
        },
    ).json()
    assert [e["sequence_number"] for e in batch["events"]] == [2, 3]
    assert batch["last_seq"] == 3
    stored = events_of(http, sid)
    assert [e["type"] for e in stored] == ["user_message", "llm_request", "llm_response"]
    assert stored[0]["payload"] == {"content": "hi"}
    assert stored[1]["metadata"]["tokens_in"] == 7
    assert all(e["session_id"] == sid and e["timestamp"].endswith("Z") for e in stored)


def test_a_bare_list_is_a_batch(http: httpx.Client) -> None:
    sid = new_session(http)
    response = append(http, sid, [{"type": "a"}, {"type": "b"}], expected_seq=0)
    assert response.status_code == 201
    assert [e["type"] for e in response.json()["events"]] == ["a", "b"]


def test_retrying_an_append_with_the_same_id_writes_nothing(http: httpx.Client) -> None:
    sid = new_session(http)
    first = append(http, sid, {"id": "evt-1", "type": "tool_called", "payload": {"n": 1}})
    retry = append(http, sid, {"id": "evt-1", "type": "tool_called", "payload": {"n": 1}})
    assert first.status_code == retry.status_code == 201
    assert retry.json()["events"] == first.json()["events"]
    assert len(events_of(http, sid)) == 1


def test_expected_seq_conflict_writes_nothing(http: httpx.Client) -> None:
    sid = new_session(http)
    append(http, sid, {"type": "a"})
    clash = problem(append(http, sid, {"type": "b"}, expected_seq=0))
    assert (clash["status"], clash["code"]) == (409, "concurrency_conflict")
    assert clash["details"] == {"session_id": sid, "expected": 0, "actual": 1}
    clash2 = problem(append(http, sid, {"events": [{"type": "b"}], "expected_seq": 5}))
    assert clash2["code"] == "concurrency_conflict"
    assert len(events_of(http, sid)) == 1


def test_a_batch_with_one_bad_event_writes_none(http: httpx.Client) -> None:
    sid = new_session(http)
    bad = problem(append(http, sid, [{"type": "ok"}, {"type": "Not A Type"}]))
    assert (bad["status"], bad["code"]) == (400, "invalid_event")
    unknown = problem(append(http, sid, [{"type": "ok"}, {"type": "x", "sequence_number": 9}]))
    assert unknown["code"] == "invalid_input"
    assert events_of(http, sid) == []


def test_a_batch_over_the_limit_is_refused(http: httpx.Client) -> None:
    sid = new_session(http)
    too_many = problem(append(http, sid, [{"type": "a"}] * 51))
    assert too_many["status"] == 400 and "limit is 50" in too_many["detail"]
    assert append(http, sid, [{"type": "a"}] * 50).status_code == 201


def test_read_filters_and_formats(http: httpx.Client) -> None:
    sid = new_session(http)
    append(http, sid, [{"type": t} for t in ("a", "b", "a", "c", "a", "b")])
    assert [e["sequence_number"] for e in events_of(http, sid, types="a")] == [1, 3, 5]
    assert [e["sequence_number"] for e in events_of(http, sid, types="a,c")] == [1, 3, 4, 5]
    assert [e["sequence_number"] for e in events_of(http, sid, from_seq=2, to_seq=4)] == [2, 3, 4]
    assert [e["sequence_number"] for e in events_of(http, sid, types="a", limit=2)] == [1, 3]
    everything = events_of(http, sid)
    middle = everything[2]["timestamp"]
    since = events_of(http, sid, since=middle)
    assert since[0]["timestamp"] >= middle and len(since) >= 4
    assert events_of(http, sid, until="2000-01-01T00:00:00Z") == []
    lines = http.get(f"/v1/sessions/{sid}/events", headers={"accept": "application/x-ndjson"})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert [orjson.loads(line) for line in lines.content.splitlines()] == everything
    fmt = http.get(f"/v1/sessions/{sid}/events", params={"format": "jsonl", "types": "b"})
    assert [orjson.loads(line)["sequence_number"] for line in fmt.content.splitlines()] == [2, 6]


def test_a_long_read_is_streamed_in_pages_without_losing_events(http: httpx.Client) -> None:
    sid = new_session(http)
    for start in range(0, 1200, 50):
        append(http, sid, [{"type": "a", "payload": start + i} for i in range(50)])
    everything = events_of(http, sid)
    assert [e["sequence_number"] for e in everything] == list(range(1, 1201))
    some = events_of(http, sid, from_seq=100, limit=700)
    assert [e["sequence_number"] for e in some] == list(range(100, 800))


def test_naive_times_and_bad_filters_are_clear_errors(http: httpx.Client) -> None:
    sid = new_session(http)
    naive = problem(http.get(f"/v1/sessions/{sid}/events", params={"since": "2026-01-01T00:00"}))
    assert naive["code"] == "invalid_input" and "timezone" in naive["detail"]
    # Valid, but in the year 10000 once in UTC (a PostgreSQL store failed with a 500).
    for name in ("since", "until"):
        params = {name: "9999-12-31T23:59:59-14:00"}
        beyond = problem(http.get(f"/v1/sessions/{sid}/events", params=params))
        assert (beyond["status"], beyond["code"]) == (400, "invalid_input"), name
    assert problem(http.get(f"/v1/sessions/{sid}/events", params={"from_seq": -1}))["status"] == 400
    assert problem(http.get(f"/v1/sessions/{sid}/events", params={"types": "Bad"}))["status"] == 400


def test_sequence_numbers_beyond_64_bits_are_refused(http: httpx.Client) -> None:
    # A PostgreSQL store failed on them with a 500 (storage_error); gRPC types them int64.
    sid = new_session(http)
    append(http, sid, {"type": "a"})
    big = 2**63
    for method, path, params, body in [
        ("GET", "events", {"from_seq": big}, None),
        ("GET", "events", {"to_seq": big}, None),
        ("GET", "events", {"limit": big}, None),
        ("GET", "state", {"at_seq": big}, None),
        ("GET", "stats", {"at_seq": big}, None),
        ("GET", "stream", {"from_seq": big}, None),
        ("POST", "events", {"expected_seq": big}, {"type": "a"}),
        ("POST", "events", {}, {"events": [{"type": "a"}], "expected_seq": big}),
        ("POST", "fork", {}, {"at_seq": big}),
    ]:
        response = http.request(method, f"/v1/sessions/{sid}/{path}", params=params, json=body)
        assert (response.status_code, problem(response)["code"]) == (400, "invalid_input"), path
    headers = {"last-event-id": str(big - 1)}  # resumes at 2**63
    response = http.get(f"/v1/sessions/{sid}/stream", headers=headers)
    assert (response.status_code, problem(response)["code"]) == (400, "invalid_input")
    assert len(events_of(http, sid)) == 1


def test_state_fork_and_time_travel(http: httpx.Client) -> None:
    sid = new_session(http, name="src")
    append(
        http,
        sid,
        [
            {"type": "llm_response", "metadata": {"tokens_in": 10, "tokens_out": 5}},
            {"type": "tool_called", "metadata": {"tool_name": "t", "call_id": "c1"}},
            {"type": "error", "payload": {"error": "boom"}},
        ],
    )
    state = http.get(f"/v1/sessions/{sid}/state").json()
    assert (state["version"], state["tool_calls"], state["errors"]) == (3, 1, 1)
    assert state["tokens"]["input"] == 10 and state["tokens"]["output"] == 5
    assert "c1" in state["open_calls"]
    early = http.get(f"/v1/sessions/{sid}/state", params={"at_seq": 1}).json()
    assert (early["version"], early["tool_calls"]) == (1, 0)
    forked = http.post(f"/v1/sessions/{sid}/fork", json={"at_seq": 2, "name": "what-if"})
    assert forked.status_code == 201
    fork = forked.json()
    assert (fork["parent_id"], fork["forked_at"], fork["event_count"]) == (sid, 2, 2)
    assert [e["type"] for e in events_of(http, fork["id"])] == ["llm_response", "tool_called"]
    beyond = problem(http.post(f"/v1/sessions/{sid}/fork", json={"at_seq": 9}))
    assert beyond["code"] == "invalid_input"


def _cli(server: ServerProcess, *args: str) -> bytes:
    return subprocess.run(
        [sys.executable, "-m", "agentstore_cli", "--data-dir", str(server.data_dir), *args],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


def test_stats_and_export_are_the_cli_s_json(http: httpx.Client, server: ServerProcess) -> None:
    sid = new_session(http, name="stats")
    append(
        http,
        sid,
        [
            {"type": "llm_request", "metadata": {"model": "gpt-4o", "tokens_in": 100}},
            {"type": "llm_response", "metadata": {"model": "gpt-4o", "tokens_out": 20}},
            {"type": "tool_called", "metadata": {"tool_name": "search", "call_id": "k"}},
            {"type": "tool_result", "metadata": {"call_id": "k", "duration_ms": 12}},
        ],
    )
    stats = http.get(f"/v1/sessions/{sid}/stats")
    assert stats.json() == orjson.loads(_cli(server, "stats", sid, "--format", "json"))
    at = http.get(f"/v1/sessions/{sid}/stats", params={"at_seq": 2}).json()
    assert at == orjson.loads(_cli(server, "stats", sid, "--at", "2", "--format", "json"))
    export = http.get(f"/v1/sessions/{sid}/export")
    assert export.content == _cli(server, "export", sid)
    assert "attachment" in export.headers["content-disposition"]
    bare = http.get(f"/v1/sessions/{sid}/export", params={"bare": 1})
    assert bare.content == _cli(server, "export", sid, "--bare")
    empty = new_session(http)
    assert http.get(f"/v1/sessions/{empty}/export").content == _cli(server, "export", empty)


def test_session_list_pages_filters_and_summaries(http: httpx.Client) -> None:
    tag = {"suite": "paging"}
    ids = [new_session(http, name=f"page-{i}", labels=tag) for i in range(7)]
    append(http, ids[-1], {"type": "llm_response", "metadata": {"tokens_in": 4, "cost_usd": 0.5}})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "label": "suite=paging"}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/sessions", params=params).json()
        seen += [s["id"] for s in page["sessions"]]
        pages += 1
        if pages == 1:
            new_session(http, labels=tag)  # created meanwhile: must not shift the pages
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert pages == 3
    named = http.get("/v1/sessions", params={"q": "PAGE-3"}).json()["sessions"]
    assert [s["id"] for s in named] == [ids[3]]
    by_id = http.get("/v1/sessions", params={"q": ids[5][:12]}).json()["sessions"]
    assert ids[5] in [s["id"] for s in by_id]
    prefixed = http.get("/v1/sessions", params={"prefix": ids[2]}).json()["sessions"]
    assert [s["id"] for s in prefixed] == [ids[2]]
    summary = http.get("/v1/sessions", params={"label": "suite=paging", "summary": 1}).json()
    figures = summary["summaries"][ids[-1]]
    assert figures["events"] == 1 and figures["tokens_in"] == 4 and figures["cost_usd"] == 0.5
    assert figures["last_activity"].endswith("Z")
    bad = problem(http.get("/v1/sessions", params={"cursor": "not-a-cursor"}))
    assert bad["code"] == "invalid_input"
    assert problem(http.get("/v1/sessions", params={"label": "novalue"}))["status"] == 400
    assert problem(http.get("/v1/sessions", params={"limit": 5000}))["status"] == 400


def test_session_pages_survive_deletions(http: httpx.Client) -> None:
    tag = {"suite": "deleting"}
    ids = [new_session(http, labels=tag) for i in range(9)][::-1]  # newest first
    params: dict[str, Any] = {"limit": 3, "label": "suite=deleting"}
    first = http.get("/v1/sessions", params=params).json()
    assert [s["id"] for s in first["sessions"]] == ids[:3]
    for sid in ids[:2]:  # sessions before the cursor go away
        http.delete(f"/v1/sessions/{sid}")
    second = http.get("/v1/sessions", params={**params, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in second["sessions"]] == ids[3:6]
    http.delete(f"/v1/sessions/{ids[5]}")  # the cursor's own session goes away
    third = http.get("/v1/sessions", params={**params, "cursor": second["next_cursor"]}).json()
    assert [s["id"] for s in third["sessions"]] == ids[6:9]
    assert third["next_cursor"] is None


@pytest.mark.parametrize(
    "sid",
    ["bad..id", "-leading-dash", "x" * 129, "semi;colon", "sp ace"],
)
def test_invalid_session_ids_are_refused(http: httpx.Client, sid: str) -> None:
    for response in (
        http.get(f"/v1/sessions/{sid}"),
        http.post(f"/v1/sessions/{sid}/events", json={"type": "a"}),
        http.post("/v1/sessions", json={"id": sid}),
    ):
        body = problem(response)
        assert (body["status"], body["code"]) == (400, "invalid_session_id")


def test_a_path_never_reaches_the_store(http: httpx.Client, server: ServerProcess) -> None:
    for path in ("/v1/sessions/..%2F..%2Fetc%2Fpasswd", "/v1/sessions/%2E%2E/events"):
        response = http.get(path)
        assert response.status_code in (400, 404)
        problem(response)
    assert not (server.data_dir.parent / "passwd").exists()


HOSTILE = [
    b"[" * 100_000 + b"]" * 100_000,  # nesting far past any parser's stack
    b'{"type": "a", "payload": NaN}',
    b'{"type": "a", "payload": 123456789012345678901234567890}',
    b'{"type": "a", "payload": "\xff\xfe"}',  # not UTF-8
    b'{"type": "a"',
    b"",
    b"null",
    b'"just a string"',
    b'{"type": {"$where": "1"}}',
    b'{"events": "not a list"}',
    b'{"type": "a", "metadata": {"tokens_in": -5}}',
    b'{"type": "a", "metadata": {"cost_usd": true}}',  # was taken for one dollar
    b'{"type": "a", "metadata": {"tokens_in": "5"}}',
    b'{"type": "a", "metadata": [1, 2]}',
    # nesting orjson reads but Python's json module does not, and a long digit run
    b'{"type": "a", "payload": %s123456789012345678901234567890%s}' % (b"[" * 1000, b"]" * 1000),
    b'{"type": "a", "payload": %s18446744073709551615%s}' % (b"[" * 1000, b"]" * 1000),
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_json_is_a_400_and_writes_nothing(
    http: httpx.Client, server: ServerProcess, body: bytes
) -> None:
    sid = new_session(http)
    response = http.post(
        f"/v1/sessions/{sid}/events", content=body, headers={"content-type": "application/json"}
    )
    assert problem(response)["status"] == 400
    assert events_of(http, sid) == []
    assert http.get("/healthz").json()["status"] == "ok"


def test_unknown_routes_and_methods_are_problems(http: httpx.Client) -> None:
    assert problem(http.get("/v1/nothing"))["code"] == "not_found"
    assert problem(http.put("/v1/sessions"))["code"] == "method_not_allowed"


def test_openapi_document_lists_every_route(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    assert doc["info"]["version"] == agentstore.__version__
    paths = doc["paths"]
    for path in (
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/sessions/{session_id}/events",
        "/v1/sessions/{session_id}/state",
        "/v1/sessions/{session_id}/fork",
        "/v1/sessions/{session_id}/stats",
        "/v1/sessions/{session_id}/export",
        "/v1/sessions/{session_id}/stream",
        "/healthz",
    ):
        assert path in paths
    body = paths["/v1/sessions/{session_id}/events"]["post"]["requestBody"]
    assert body["required"] is True
    assert "AppendBatch" in doc["components"]["schemas"]


def test_the_data_is_a_plain_data_directory(server: ServerProcess, http: httpx.Client) -> None:
    sid = new_session(http)
    append(http, sid, {"type": "a", "payload": 1})
    log = server.data_dir / "events" / f"{sid}.jsonl"
    assert orjson.loads(log.read_bytes().splitlines()[0])["payload"] == 1
    assert Path(server.data_dir, "sessions", f"{sid}.json").is_file()


def test_a_client_that_hangs_up_mid_body_writes_nothing_and_is_no_server_error(
    http: httpx.Client, server: ServerProcess
) -> None:
    sid = new_session(http)
    body = orjson.dumps([{"type": "a", "payload": i} for i in range(40)])
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(
            f"POST /v1/sessions/{sid}/events HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
    # The server notices the hang-up on its own time: wait for its access log line.
    line = f'"POST /v1/sessions/{sid}/events"'
    deadline = time.monotonic() + 10
    while line not in (log := server.log.read_text()):
        assert time.monotonic() < deadline, "no access log line for the request"
        time.sleep(0.02)
    assert f"{line} 499 " in log  # nginx's "client closed request", not a 500
    assert "Traceback" not in log and "ClientDisconnect" not in log
    assert events_of(http, sid) == []


def test_a_path_cannot_forge_access_log_lines(http: httpx.Client, server: ServerProcess) -> None:
    # The path arrives percent-decoded: a %0a would start a line of the client's choosing.
    response = http.get("/v1/sessions/x%0a2026-01-01%2000:00:00,000%20INFO%20forged%1b[2J")
    assert problem(response)["status"] == 400
    line = '"GET /v1/sessions/x\\x0a2026-01-01 00:00:00,000 INFO forged\\x1b[2J" 400'
    deadline = time.monotonic() + 10
    while line not in (log := server.log.read_text()):
        assert time.monotonic() < deadline, log[-500:]
        time.sleep(0.02)
    assert not any(row.startswith("2026-01-01") for row in log.splitlines())
    assert "\x1b" not in log

"""Review 15 (HTTP door): JSON bodies that parse, but that the server must still refuse.

- Nesting orjson reads (1,024 levels) but cannot write (254): a payload nested 253 deep was
  stored (201), then every read of its session answered 500 or was cut off mid-body.
- Duplicate keys: orjson keeps the last, other parsers the first, so
  `{"expected_seq": 0, "expected_seq": null}` was an unconditional append.
- `expected_seq` and `at_seq` took `true`, `"1"` and `1.0` for integers (pydantic's lax
  mode): a fork `{"at_seq": true}` forked at event 1.
- GET or HEAD of `.../fork` (POST only) answered 404 `not_found` (the web UI's files took
  the GET), not 405 with `Allow: POST`.
- A single-valued query parameter given twice: FastAPI took the last value, so
  `?expected_seq=0&expected_seq=1` was conditional on 1 to the server, on 0 to a proxy.

A real `agentstore serve` over loopback; each test in sessions of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest

import agentstore
from tests.server.http_helpers import ServerProcess, problem, running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running(tmp_path_factory.mktemp("hostile-body") / "data") as srv:
        yield srv


@pytest.fixture
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def new_session(http: httpx.Client) -> str:
    response = http.post("/v1/sessions", json={"name": "hostile"})
    assert response.status_code == 201, response.text
    sid: str = response.json()["id"]
    return sid


def post(http: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return http.post(path, content=body, headers={"content-type": "application/json"})


def events_of(http: httpx.Client, sid: str) -> list[dict[str, object]]:
    response = http.get(f"/v1/sessions/{sid}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, object]] = response.json()
    return events


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


# --- nesting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "a", "payload": %s}' % nested(253),  # stored, then unreadable
        b'{"type": "a", "payload": %s}' % nested(600),
        b'{"events": [{"type": "a", "payload": %s}]}' % nested(251),
        b'{"type": "a", "metadata": {"deep": %s}}' % nested(252),
    ],
    ids=["payload-253", "payload-600", "batch-251", "metadata-252"],
)
def test_a_body_nested_too_deep_is_a_400_and_writes_nothing(
    http: httpx.Client, body: bytes
) -> None:
    sid = new_session(http)
    response = post(http, f"/v1/sessions/{sid}/events", body)
    assert (response.status_code, problem(response)["code"]) == (400, "invalid_input")
    assert "nested more than 250 levels" in problem(response)["detail"]
    assert events_of(http, sid) == []


def test_a_payload_within_the_cap_is_stored_and_every_read_of_it_works(
    http: httpx.Client,
) -> None:
    sid = new_session(http)
    response = post(
        http, f"/v1/sessions/{sid}/events", b'{"type": "a", "payload": %s}' % nested(249)
    )
    assert response.status_code == 201, response.text
    for path in ("events", "events?format=jsonl", "state", "stats", "export"):
        read = http.get(f"/v1/sessions/{sid}/{path}")
        assert read.status_code == 200, (path, read.text[:200])
        assert path == "stats" or b"[[[[1]]]]" in read.content, path


# --- duplicate keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [{"type": "a"}], "expected_seq": 0, "expected_seq": null}',
        b'{"type": "a", "type": "b"}',
        b'{"type": "a", "payload": {"amount": 1, "amount": 1000000}}',
        b'{"type": "a", "metadata": {"tokens_in": 1, "tokens_in": 99}}',
        # a colon spelt \u003a in a string must not hide a key given twice
        b'{"type": "a", "type": "b", "payload": "\\u003a"}',
        b'{"type": "a", "payload": {"k": 1, "k": 2, "t": "\\u003A"}}',
    ],
    ids=["expected_seq", "type", "payload", "metadata", "escaped-colon", "escaped-colon-upper"],
)
def test_a_key_given_twice_is_a_400_and_writes_nothing(
    http: httpx.Client, server: ServerProcess, body: bytes
) -> None:
    sid = new_session(http)
    post(http, f"/v1/sessions/{sid}/events", b'{"type": "first"}')
    response = post(http, f"/v1/sessions/{sid}/events", body)
    assert (response.status_code, problem(response)["code"]) == (400, "invalid_input")
    assert "twice in one object" in problem(response)["detail"]
    assert [e["type"] for e in events_of(http, sid)] == ["first"]


def test_a_key_given_twice_in_a_new_session_creates_none(http: httpx.Client) -> None:
    response = post(http, "/v1/sessions", b'{"id": "dup-key-a", "id": "dup-key-b"}')
    assert (response.status_code, problem(response)["code"]) == (400, "invalid_input")
    for sid in ("dup-key-a", "dup-key-b"):
        assert http.get(f"/v1/sessions/{sid}").status_code == 404


@pytest.mark.parametrize(
    ("body", "payload"),
    [
        (
            b'{"type": "a", "payload": {"url": "http://x:1", "b": "c:d"}}',
            {"url": "http://x:1", "b": "c:d"},
        ),
        (b'{"type": "a", "payload": {"a": "\\u003a", "b": 1}}', {"a": ":", "b": 1}),
        (b'{"type": "a", "payload": {"\\u003a": 1, ":": 2}}', None),  # the same key twice
        (b'{"type" : "a" , "payload" : { "x" : { "x" : 1 } } }', {"x": {"x": 1}}),
    ],
    ids=["colons-in-strings", "escaped-colon", "escaped-key", "spaces"],
)
def test_keys_are_told_apart_exactly(http: httpx.Client, body: bytes, payload: object) -> None:
    sid = new_session(http)
    response = post(http, f"/v1/sessions/{sid}/events", body)
    if payload is None:
        assert problem(response)["code"] == "invalid_input"
        assert events_of(http, sid) == []
    else:
        assert response.status_code == 201, response.text
        assert events_of(http, sid)[0]["payload"] == payload


# --- integers that are not integers -------------------------------------------------------


@pytest.mark.parametrize("value", [b"true", b"false", b'"1"', b"1.0"])
def test_expected_seq_must_be_a_json_integer(http: httpx.Client, value: bytes) -> None:
    sid = new_session(http)
    post(http, f"/v1/sessions/{sid}/events", b'{"type": "first"}')
    body = b'{"events": [{"type": "a"}], "expected_seq": %s}' % value
    response = post(http, f"/v1/sessions/{sid}/events", body)
    assert (response.status_code, problem(response)["code"]) == (400, "invalid_input")
    assert len(events_of(http, sid)) == 1


@pytest.mark.parametrize("value", [b"true", b'"1"', b"1.0"])
def test_at_seq_must_be_a_json_integer(http: httpx.Client, value: bytes) -> None:
    sid = new_session(http)
    post(http, f"/v1/sessions/{sid}/events", b'[{"type": "a"}, {"type": "b"}]')
    before = len(http.get("/v1/sessions", params={"limit": 1000}).json()["sessions"])
    response = post(http, f"/v1/sessions/{sid}/fork", b'{"at_seq": %s}' % value)
    assert (response.status_code, problem(response)["code"]) == (400, "invalid_input")
    assert len(http.get("/v1/sessions", params={"limit": 1000}).json()["sessions"]) == before


# --- methods --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_or_head_of_a_post_only_path_is_a_405(http: httpx.Client, method: str) -> None:
    sid = new_session(http)
    response = http.request(method, f"/v1/sessions/{sid}/fork")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    if method == "GET":
        assert problem(response)["code"] == "method_not_allowed"
    assert http.get("/v1/no-such-route").status_code == 404


# --- the store itself (not the HTTP door's file) -----------------------------------------


def _nest(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_the_store_refuses_a_payload_its_event_json_cannot_hold() -> None:
    async def run() -> None:
        async with agentstore.open(in_memory=True) as store:
            session = await store.create_session()
            try:
                await store.append(session.id, agentstore.new_event("a", _nest(254)))
            except agentstore.InvalidEventError:
                return
            event = (await store.get_events(session.id))[0]
            orjson.loads(event.to_json())
            state = await store.get_state(session.id)
            orjson.dumps(state.model_dump(mode="json"))

    asyncio.run(run())


def test_orjson_still_writes_254_levels_and_no_more() -> None:
    """http_body's cap relies on it: a change of orjson's limit must be seen here."""
    orjson.dumps(_nest(254))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(_nest(255))


# --- query parameters given twice -----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["expected_seq=0&expected_seq=1", "expected_seq=1&expected_seq=0"],
)
def test_expected_seq_given_twice_is_a_400_and_writes_nothing(
    http: httpx.Client, query: str
) -> None:
    """FastAPI took the last value, a proxy or log reader the first."""
    sid = new_session(http)
    post(http, f"/v1/sessions/{sid}/events", b'{"type": "first"}')
    response = post(http, f"/v1/sessions/{sid}/events?{query}", b'{"type": "a"}')
    assert (response.status_code, problem(response)["code"]) == (400, "invalid_input")
    assert "'expected_seq' twice" in problem(response)["detail"]
    assert len(events_of(http, sid)) == 1


def test_single_valued_parameters_given_twice_are_refused_list_ones_are_not(
    http: httpx.Client,
) -> None:
    sid = new_session(http)
    post(http, f"/v1/sessions/{sid}/events", b'[{"type": "a"}, {"type": "b"}, {"type": "c"}]')
    for path in (
        f"/v1/sessions/{sid}/events?from_seq=3&from_seq=1",
        f"/v1/sessions/{sid}/state?at_seq=1&at_seq=2",
        "/v1/sessions?limit=1&limit=2",
    ):
        assert problem(http.get(path))["code"] == "invalid_input", path
    read = http.get(f"/v1/sessions/{sid}/events?types=a&types=c")
    assert [e["type"] for e in read.json()] == ["a", "c"]
    listed = http.get("/v1/sessions?label=x=1&label=y=2")
    assert listed.status_code == 200, listed.text


# --- the decoder itself (in process) ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "refused"),
    [
        (b"[18446744073709551615]", False),  # the largest 64-bit integer orjson keeps
        (b"[18446744073709551616]", True),
        (b'{"a": -9223372036854775809}', True),
        (b'["123456789012345678901234", 1.5e300]', False),  # digits in a string, a float
        (b'{"a": [1, 2, {"b": 123456789012345678901234}]}', True),
        (b"[1234567890, 123456789]", False),  # 19 digits, not in a row
    ],
)
def test_integers_beyond_64_bits_are_found_wherever_they_are(raw: bytes, refused: bool) -> None:
    from agentstore.server.http_body import decode_json_body

    if refused:
        with pytest.raises(agentstore.InvalidInputError, match="does not fit in 64 bits"):
            decode_json_body(raw)
    else:
        assert decode_json_body(raw) == orjson.loads(raw)

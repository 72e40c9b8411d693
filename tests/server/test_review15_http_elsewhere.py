"""Review 15 (HTTP door): what the HTTP door now refuses, still taken elsewhere.

Strict xfails: the fixes are in files of other people (the gRPC door, `server/inputs.py`).

- The gRPC door reads `payload_json` with orjson, which keeps the last value of a key
  given twice: a payload is stored other than what a first-wins reader of the same bytes
  sees (HTTP refuses such a body with 400 `invalid_input` since review 15).
- A listing cursor naming its last session with a JSON array instead of an id is taken
  (`str()` of it) and answers an empty last page, not 400: a tampered cursor should be
  refused as every other one is.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import grpc
import httpx
import orjson
import pytest

from agentstore.server import agentstore_pb2 as pb
from tests.server.grpc_helpers import error_of, running_door
from tests.server.http_helpers import ServerProcess, problem, running


@pytest.mark.xfail(
    strict=True,
    reason="grpc door: payload_json with a key given twice is stored last-wins (orjson), "
    "where HTTP answers 400 invalid_input",
)
async def test_grpc_refuses_a_payload_that_gives_a_key_twice() -> None:
    async with running_door() as door:
        session = await door.api.CreateSession(pb.CreateSessionRequest(name="dup"))
        event = pb.NewEvent(type="custom_step", payload_json=b'{"amount": 1, "amount": 1000}')
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await door.api.Append(pb.AppendRequest(session_id=session.id, events=[event]))
        code, agentstore_code, _ = error_of(refused.value)
        assert (code, agentstore_code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_input")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server: ServerProcess
    with running(tmp_path_factory.mktemp("elsewhere") / "data") as server, server.client() as c:
        yield c


def cursor(parts: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def test_a_cursor_with_a_tampered_time_is_refused(http: httpx.Client) -> None:
    """The reference: a cursor whose parts are of the wrong kind is a 400."""
    response = http.get("/v1/sessions", params={"cursor": cursor([None, "s-1", None])})
    assert problem(response)["code"] == "invalid_input"


@pytest.mark.xfail(
    strict=True,
    reason="server/inputs.decode_cursor takes str() of a cursor's session id, so one naming "
    "a JSON array is read as the id \"['x']\" and answers a page, not 400 invalid_input",
)
def test_a_cursor_whose_session_id_is_not_a_string_is_refused(http: httpx.Client) -> None:
    http.post("/v1/sessions", json={"name": "listed"})
    tampered = cursor(["2026-01-01T00:00:00Z", ["x"], None])
    response = http.get("/v1/sessions", params={"cursor": tampered})
    assert problem(response)["code"] == "invalid_input"

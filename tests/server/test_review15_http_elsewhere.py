"""Review 15 (HTTP door): what the HTTP door refuses, refused elsewhere too.

- The gRPC door read `payload_json` with orjson, which keeps the last value of a key
  given twice: a payload was stored other than what a first-wins reader of the same bytes
  sees (HTTP refuses such a body with 400 `invalid_input` since review 15). Now refused
  (`invalid_event`, as every payload the gRPC door cannot take).
- A listing cursor naming its last session with a JSON array instead of an id was taken
  (`str()` of it) and answered an empty last page: now 400 `invalid_input`, as every
  other tampered cursor."""

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


async def test_grpc_refuses_a_payload_that_gives_a_key_twice() -> None:
    async with running_door() as door:
        session = await door.api.CreateSession(pb.CreateSessionRequest(name="dup"))
        event = pb.NewEvent(type="custom_step", payload_json=b'{"amount": 1, "amount": 1000}')
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await door.api.Append(pb.AppendRequest(session_id=session.id, events=[event]))
        code, agentstore_code, _ = error_of(refused.value)
        # invalid_event: as every other payload the gRPC door cannot take.
        assert (code, agentstore_code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_event")
        assert "'amount' twice" in (refused.value.details() or "")
        assert await door.service.store.replay(session.id) == []


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


def test_a_cursor_whose_session_id_is_not_a_string_is_refused(http: httpx.Client) -> None:
    http.post("/v1/sessions", json={"name": "listed"})
    tampered = cursor(["2026-01-01T00:00:00Z", ["x"], None])
    response = http.get("/v1/sessions", params={"cursor": tampered})
    assert problem(response)["code"] == "invalid_input"

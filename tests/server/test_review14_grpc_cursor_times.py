"""Review 14: a listing cursor whose time has no UTC form is answered, not a 500.

A cursor is `created_at|id` (`session_cursor`); a client may send any string. One whose
time, taken to UTC, falls before year 1 or after 9999 (`0001-01-01T00:00:00+14:00`,
`9999-12-31T23:59:59-14:00`) parses, and the file backend's listing turned it into its sort
key with `astimezone(UTC)`: OverflowError, so the gRPC door answered INTERNAL "internal
server error" (and the HTTP door 500) where memory and PostgreSQL answer a page. Now the
file backend answers as they do: such a time sorts before or after every session.

The real gRPC door over a real data directory and an in-memory store, both services.
"""

from __future__ import annotations

import base64
from pathlib import Path

import grpc
import orjson
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb
from tests.server.grpc_helpers import running_door

# (cursor, sessions after it): before year 1 in UTC sorts before every session (none
# after it), after 9999 sorts after all of them (every session after it).
_CURSORS = [
    ("0001-01-01T00:00:00+14:00|a", 0),
    ("0001-01-01T00:00:00.000001+23:59|zz", 0),
    ("9999-12-31T23:59:59-14:00|a", 3),
    ("9999-12-31T23:59:59.999999-00:01|", None),  # no id: refused as before
]


def _api_cursor(store_cursor: str) -> str:
    raw = orjson.dumps(["9999-12-31T00:00:00+00:00", "zz", store_cursor])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _answers(store: agentstore.Store) -> list[object]:
    for _ in range(3):
        await store.create_session()
    answers: list[object] = []
    async with running_door(store) as door:
        for cursor, _ in _CURSORS:
            for call in (
                lambda c: door.storage.ListSessions(pb.ListSessionsRequest(limit=10, cursor=c)),
                lambda c: door.api.ListSessions(
                    pb.ListSessionsRequest(limit=10, cursor=_api_cursor(c))
                ),
            ):
                try:
                    reply = await call(cursor)
                except grpc.aio.AioRpcError as exc:
                    answers.append((cursor, exc.code().name))
                else:
                    answers.append((cursor, len(reply.sessions)))
    return answers


@pytest.mark.parametrize("kind", ["file", "memory"])
async def test_a_cursor_time_past_utc_is_answered_like_any_other(tmp_path: Path, kind: str) -> None:
    if kind == "file":
        store = await agentstore.open(tmp_path / "data")
    else:
        store = await agentstore.open(in_memory=True)
    try:
        answers = await _answers(store)
    finally:
        await store.close()
    expected: list[object] = []
    for cursor, after in _CURSORS:
        got = "INVALID_ARGUMENT" if after is None else after
        expected += [(cursor, got), (cursor, got)]
    assert answers == expected

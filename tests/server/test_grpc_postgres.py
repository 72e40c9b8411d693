"""The gRPC door over a PostgreSQL store: what a client sends must never be a 500 there.

Needs a PostgreSQL server (`AGENTSTORE_TEST_POSTGRES_URL`, default the project machines'
`postgresql://postgres@127.0.0.1:5432/postgres`); skipped without one. Each test works in
a schema of its own, dropped at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import grpc
import pytest

import agentstore
from agentstore.server import agentstore_pb2 as pb

from .grpc_helpers import Door, error_of, new_event, running_door

asyncpg = pytest.importorskip("asyncpg", reason="agentstore[postgres] is not installed")
URL = os.environ.get(
    "AGENTSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
async def door() -> AsyncIterator[Door]:
    schema = f"t_{secrets.token_hex(6)}"
    try:
        conn = await asyncpg.connect(URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(f"no PostgreSQL server at {URL} ({exc})")
    try:
        async with (
            agentstore.open(f"{URL}?schema={schema}", pricing=False) as store,
            running_door(store) as running,
        ):
            yield running
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_a_nul_in_an_event_id_or_a_session_name_is_invalid_input(door: Door) -> None:
    sid = (await door.api.CreateSession(pb.CreateSessionRequest())).id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await door.api.Append(
            pb.AppendRequest(session_id=sid, events=[new_event("custom", 1, id="a\x00b")])
        )
    assert error_of(err.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await door.api.CreateSession(pb.CreateSessionRequest(name="a\x00b"))
    assert error_of(err.value)[0] == grpc.StatusCode.INVALID_ARGUMENT

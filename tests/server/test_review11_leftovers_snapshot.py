"""Review 11's leftover: `Storage.SaveSnapshot` stored a snapshot of any version.

A snapshot is a cache of the events up to its version. One beyond the session's last
sequence number (or below 1) describes events that do not exist: it was stored, and once
the session grew to its version, state reads started from it (a forged or stale state
that no event produced). The server trusts no client (see test_grpc_storage.py): such a
snapshot is refused with INVALID_ARGUMENT and nothing is stored. A deleted session's
snapshot is still ignored, as the backends' contract says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grpc
import orjson
import pytest

import agentstore
from agentstore import new_event
from agentstore.server import agentstore_pb2 as pb
from agentstore.state import default_reducer, reducer_fingerprint

from .grpc_helpers import error_of, running_door


def _forged(sid: str, version: int) -> pb.Snapshot:
    state = {"session_id": sid, "version": version, "data": {"forged": True}}
    return pb.Snapshot(
        session_id=sid,
        version=version,
        state_json=orjson.dumps(state),
        reducer=reducer_fingerprint(default_reducer),
        created_at=datetime.now(UTC).isoformat(),
    )


@pytest.mark.parametrize("version", [3, 1_000, -1, 0])
async def test_a_snapshot_of_events_the_session_lacks_is_refused(
    tmp_path: Path, version: int
) -> None:
    async with (
        agentstore.open(tmp_path / "data", pricing=False, snapshot_interval=1000) as store,
        running_door(store) as door,
    ):
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in (1, 2)])
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await door.storage.SaveSnapshot(_forged(sid, version))
        code, kind, _ = error_of(err.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert kind == "invalid_input"
        assert await store.backend.load_snapshot(sid, reducer_fingerprint(default_reducer)) is None
        if version > 2:
            # Had it been kept, the session reaching its version would have been read from it.
            await store.append_many(sid, [new_event("custom", {}) for _ in range(version - 2)])
        async with agentstore.open(tmp_path / "data", snapshot_interval=1000) as fresh:
            assert "forged" not in (await fresh.get_state(sid)).data


async def test_a_snapshot_up_to_the_last_event_is_kept(tmp_path: Path) -> None:
    async with (
        agentstore.open(tmp_path / "data", pricing=False, snapshot_interval=1000) as store,
        running_door(store) as door,
    ):
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {}) for _ in range(2)])
        await door.storage.SaveSnapshot(_forged(sid, 2))
        kept = await store.backend.load_snapshot(sid, reducer_fingerprint(default_reducer))
        assert kept is not None and kept.version == 2
        # A deleted session's snapshot is ignored, as in process (not an error).
        await store.delete_session(sid)
        await door.storage.SaveSnapshot(_forged(sid, 2))
        with pytest.raises(agentstore.SessionNotFoundError):
            await store.get_session(sid)

"""The remote backend passes the whole conformance contract through a live gRPC server.

Each test starts a real `agentstore serve` gRPC door on a free loopback port, over a
memory store or a file store; the contract's stores are `RemoteBackend` clients of it,
so every rule (sequence numbers, `expected_seq`, idempotent ids, snapshots per reducer,
a follower woken by another store's append) is checked across the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import agentstore
from agentstore.backends.remote import RemoteBackend
from agentstore.server.grpc_door import start_grpc_server
from agentstore.server.service import AgentStoreService
from agentstore.testing.conformance import BackendContract, BackendFactory


async def _serve(store: agentstore.Store) -> AsyncIterator[BackendFactory]:
    service = AgentStoreService(store)
    handle = await start_grpc_server(service, "127.0.0.1", 0)
    try:
        yield lambda: RemoteBackend(f"127.0.0.1:{handle.port}")
    finally:
        await handle.stop(grace=1)
        await store.close()


class TestRemoteOverMemory(BackendContract):
    @pytest.fixture
    async def backend_factory(self) -> AsyncIterator[BackendFactory]:
        store = await agentstore.open("memory://", pricing=False)
        async for factory in _serve(store):
            yield factory


class TestRemoteOverFile(BackendContract):
    @pytest.fixture
    async def backend_factory(self, tmp_path: Path) -> AsyncIterator[BackendFactory]:
        store = await agentstore.open(tmp_path / "agent-data", pricing=False)
        async for factory in _serve(store):
            yield factory

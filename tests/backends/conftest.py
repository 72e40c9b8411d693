"""The conformance suite's fixtures: every test in tests/backends runs on every backend.

A new backend is one more entry in `BACKENDS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agentstore import Store
from agentstore.backends.base import Backend
from agentstore.backends.file import FileBackend
from agentstore.backends.memory import MemoryBackend

StoreFactory = Callable[..., Awaitable[Store]]


def _memory(tmp_path: Path) -> Callable[[], Backend]:
    shared = MemoryBackend()  # "reopening" a memory store reuses the same backend
    return lambda: shared


def _file(tmp_path: Path) -> Callable[[], Backend]:
    return lambda: FileBackend(tmp_path / "agent-data")


BACKENDS: dict[str, Callable[[Path], Callable[[], Backend]]] = {
    "memory": _memory,
    "file": _file,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
async def make_store(backend_name: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Open stores on one backend location; `await make_store(**store_kwargs)` reopens it."""
    new_backend = BACKENDS[backend_name](tmp_path)
    opened: list[Store] = []

    async def factory(**kwargs: Any) -> Store:
        store = await Store(new_backend(), **kwargs)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> Store:
    """An open store on the backend under test."""
    return await make_store()

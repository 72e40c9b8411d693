"""The fixtures every conformance test uses, built from the one a backend author provides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from agentstore.backends.base import Backend
from agentstore.store import Store

__all__ = ["BackendFactory", "ContractFixtures", "StoreFactory"]

BackendFactory = Callable[[], Backend]
"""Returns a backend over the test's storage; each call may return a new instance (a
"reopen") but all of them see the same sessions."""

StoreFactory = Callable[..., Awaitable[Store]]
"""`await make_store(**store_kwargs)`: an open `Store` on a new backend of the same storage."""


class ContractFixtures:
    """Fixtures shared by the contract's test classes; `backend_factory` is the author's."""

    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        """Override: return a callable that builds a backend over this test's storage."""
        raise NotImplementedError(
            "subclass BackendContract and override the `backend_factory` fixture"
        )

    @pytest.fixture
    async def make_store(self, backend_factory: BackendFactory) -> AsyncIterator[StoreFactory]:
        """Open stores on the backend under test; each call is a new `Store`."""
        opened: list[Store] = []

        async def factory(**kwargs: Any) -> Store:
            store = await Store(backend_factory(), **kwargs)
            opened.append(store)
            return store

        yield factory
        for store in opened:
            await store.close()

    @pytest.fixture
    async def store(self, make_store: StoreFactory) -> Store:
        """An open store on the backend under test."""
        return await make_store()

"""Run the conformance contract through `SyncStore`.

The `make_store` fixture here shadows the contract's: each store the suite opens
is a `SyncStore` (its own event-loop thread) seen through `ViaSync`, an async adapter that
calls the blocking methods from worker threads. A test that passes here passes with its
calls crossing threads through the blocking portal, which is what sync agents do.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from agentstore import Store, SyncStore
from agentstore.backends.base import Backend
from agentstore.testing.conformance import BackendFactory, StoreFactory

_DONE = object()
_PRIVATE = re.compile(r"\bstore\._[a-z]")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the suite's tests that reach into `Store` internals (`store._cache`, ...)."""
    here = Path(__file__).parent
    for item in items:
        func = getattr(item, "function", None)
        if func is None or here not in Path(str(item.fspath)).parents:
            continue
        if _PRIVATE.search(inspect.getsource(func)):
            item.add_marker(pytest.mark.skip(reason="uses Store internals, not the public API"))


class ViaSync:
    """An async view of a `SyncStore`: every call runs in a worker thread and blocks there."""

    def __init__(self, sync: SyncStore) -> None:
        self.sync = sync

    @property
    def backend(self) -> Backend:
        return self.sync.backend

    @property
    def closed(self) -> bool:
        return self.sync.closed

    async def __aenter__(self) -> ViaSync:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.sync.close)

    async def stream(self, session_id: str, **kwargs: Any) -> AsyncIterator[Any]:
        iterator: Iterator[Any] = self.sync.stream(session_id, **kwargs)
        try:
            while True:
                # abandon_on_cancel: a cancelled follower must not wait for the next event.
                event = await anyio.to_thread.run_sync(
                    next, iterator, _DONE, abandon_on_cancel=True
                )
                if event is _DONE:
                    return
                yield event
        finally:
            close = getattr(iterator, "close", None)
            if close is not None and not self.sync.closed:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_close_quietly, close)

    def __getattr__(self, name: str) -> Any:
        member = getattr(self.sync, name)
        if not callable(member):
            return member

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await anyio.to_thread.run_sync(functools.partial(member, *args, **kwargs))

        return call


def _close_quietly(close: Callable[[], None]) -> None:
    # "generator already executing": an abandoned follower still owns it.
    with contextlib.suppress(ValueError):
        close()


class ViaSyncFixtures:
    """Mixed in before a contract class: its stores are `SyncStore`s seen through `ViaSync`."""

    @pytest.fixture
    async def make_store(self, backend_factory: BackendFactory) -> AsyncIterator[StoreFactory]:
        """Open `SyncStore`s (seen through `ViaSync`) on the backend under test."""
        opened: list[ViaSync] = []

        async def factory(**kwargs: Any) -> Store:
            def build() -> SyncStore:
                return SyncStore(Store(backend_factory(), **kwargs))

            store = ViaSync(await anyio.to_thread.run_sync(build))
            opened.append(store)
            return store  # type: ignore[return-value]

        yield factory
        for store in opened:
            await store.close()

"""`agentstore.open()`: pick a backend for the target and wrap it in a `Store`."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from agentstore.backends.base import Backend
from agentstore.backends.registry import BackendOptions, Durability, backend_for
from agentstore.errors import InvalidInputError
from agentstore.pricing import Pricer
from agentstore.state import Reducer
from agentstore.store import Store

__all__ = ["DEFAULT_DATA_DIR", "open"]

DEFAULT_DATA_DIR = "./agent-data"


def open(
    path: str | os.PathLike[str] | Backend = DEFAULT_DATA_DIR,
    *,
    in_memory: bool = False,
    reducer: Reducer | None = None,
    snapshot_interval: int = 100,
    durability: Durability = "fsync",
    read_only: bool = False,
    cache_size: int = 1024,
    pricing: bool | Pricer = True,
    read_url: str | None = None,
    token: str | None = None,
    tracer_provider: Any = None,
    backend_options: Mapping[str, Any] | None = None,
) -> Store:
    """Open an event store: a data directory (the default), memory, a database or a server.

    ```python
    async with agentstore.open("./agent-data") as store:
        ...
    store = await agentstore.open(in_memory=True)   # or "memory://"
    ...
    await store.close()
    ```

    `path` is a data directory, a URL (`memory://`, `postgresql://...`, `grpc://...`, or a
    scheme a third-party backend registers) or a `Backend` instance.

    - `reducer`: folds events into `State` (default: `default_reducer`).
    - `snapshot_interval`: save the state every N events (0: never).
    - `durability`: `"fsync"` (an append returns once it is on disk) or `"flush"`
      (once the OS has it: survives a crash of the process, not of the machine).
    - `read_only`: never write (works on a data directory you cannot write to).
    - `cache_size`: how many sessions' states to keep in memory.
    - `pricing`: price LLM events that have a model and tokens but no cost, with
      `genai-prices` (`True`, the default), not at all (`False`), or with your own
      callable (see `agentstore.pricing`).
    - `read_url`: a database read replica for replays and listings.
    - `token`: the bearer token of an `agentstore serve` server.
    - `backend_options`: settings for a third-party backend (`BackendOptions.extra`).
    - `tracer_provider`: an OpenTelemetry `TracerProvider`: emit spans as events arrive
      (`agentstore[otel]`).
    """
    if in_memory:
        if path not in (DEFAULT_DATA_DIR, "memory://"):
            raise InvalidInputError("pass either a path/URL or in_memory=True, not both")
        path = "memory://"
    if durability not in ("fsync", "flush"):
        raise InvalidInputError(f"durability must be 'fsync' or 'flush', not {durability!r}")
    options = BackendOptions(
        read_only=read_only,
        durability=durability,
        read_url=read_url,
        token=token,
        extra=dict(backend_options or {}),
    )
    store = Store(
        backend_for(path, options),
        reducer=reducer,
        snapshot_interval=snapshot_interval,
        cache_size=cache_size,
        pricing=pricing,
    )
    if tracer_provider is not None:
        # Imported by name: the integration needs agentstore[otel], and import agentstore
        # must never import it.
        otel = importlib.import_module("agentstore.integrations.otel")
        store.add_append_listener(otel.live_listener(tracer_provider))
    return store

"""`agentstore.open()`: pick a backend from the arguments and wrap it in a `Store`."""

from __future__ import annotations

import os

from agentstore.backends.base import Backend
from agentstore.backends.file import Durability, FileBackend
from agentstore.backends.memory import MemoryBackend
from agentstore.errors import InvalidInputError
from agentstore.pricing import Pricer
from agentstore.state import Reducer
from agentstore.store import Store

__all__ = ["DEFAULT_DATA_DIR", "open"]

DEFAULT_DATA_DIR = "./agent-data"


def open(
    path: str | os.PathLike[str] = DEFAULT_DATA_DIR,
    *,
    in_memory: bool = False,
    reducer: Reducer | None = None,
    snapshot_interval: int = 100,
    durability: Durability = "fsync",
    read_only: bool = False,
    cache_size: int = 1024,
    pricing: bool | Pricer = True,
) -> Store:
    """Open an event store: a data directory (the default) or memory.

    ```python
    async with agentstore.open("./agent-data") as store:
        ...
    store = await agentstore.open(in_memory=True)
    ...
    await store.close()
    ```

    - `reducer`: folds events into `State` (default: `default_reducer`).
    - `snapshot_interval`: save the state every N events (0: never).
    - `durability`: `"fsync"` (an append returns once it is on disk) or `"flush"`
      (once the OS has it: survives a crash of the process, not of the machine).
    - `read_only`: never write to the data directory (works on one you cannot write to).
    - `cache_size`: how many sessions' states to keep in memory.
    - `pricing`: price LLM events that have a model and tokens but no cost, with
      `genai-prices` (`True`, the default), not at all (`False`), or with your own
      callable (see `agentstore.pricing`).
    """
    backend: Backend
    if in_memory:
        backend = MemoryBackend()
    else:
        if durability not in ("fsync", "flush"):
            raise InvalidInputError(f"durability must be 'fsync' or 'flush', not {durability!r}")
        if os.path.exists(path) and not os.path.isdir(path):
            raise InvalidInputError(f"{os.fspath(path)} is a file, not a data directory")
        backend = FileBackend(path, durability=durability, read_only=read_only)
    return Store(
        backend,
        reducer=reducer,
        snapshot_interval=snapshot_interval,
        cache_size=cache_size,
        pricing=pricing,
    )

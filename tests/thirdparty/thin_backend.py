"""A thin third-party backend: memory storage behind its own scheme, `thin://<name>`.

Stores opened on the same `thin://<name>` share one storage (like one database), which is
what the conformance contract needs to put two stores on one backend.
"""

from __future__ import annotations

from agentstore.backends.base import Backend
from agentstore.backends.memory import MemoryBackend
from agentstore.backends.registry import BackendOptions

_SHARED: dict[str, MemoryBackend] = {}


class ThinBackend(MemoryBackend):
    """The memory backend under another name, as a plugin would wrap its own storage."""

    def __init__(self, name: str, options: BackendOptions) -> None:
        super().__init__()
        self.name = name
        self.options = options


def open_backend(target: str, options: BackendOptions) -> Backend:
    """The entry point's factory: `thin://<name>`."""
    name = target.removeprefix("thin://")
    shared = _SHARED.get(name)
    if shared is None:
        shared = _SHARED[name] = ThinBackend(name, options)
    return shared

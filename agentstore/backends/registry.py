"""Which backend opens which target: a path, a URL by its scheme, or a `Backend` itself.

```python
agentstore.open("./agent-data")                 # a path (or file://...): the file backend
agentstore.open("memory://")                    # in memory
agentstore.open("postgresql://user@host/db")    # agentstore[postgres]
agentstore.open("grpc://host:50051", token=t)   # agentstore[server]: a remote store
agentstore.open(MyBackend())                    # any Backend instance
```

Backends are imported only when their scheme is used, so `import agentstore` imports none
of them. A third-party backend plugs in through the `agentstore.backends` entry-point
group: the entry point's name is the URL scheme, its value a factory with the signature of
`BackendFactory`:

```toml
[project.entry-points."agentstore.backends"]
mydb = "mypackage.agentstore_backend:open_backend"
```

A built-in backend whose extra is not installed raises `BackendUnavailableError` naming
`pip install 'agentstore[<extra>]'`.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from agentstore.backends.base import Backend
from agentstore.errors import BackendUnavailableError, InvalidInputError

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendFactory",
    "BackendOptions",
    "backend_for",
    "scheme_of",
]

ENTRY_POINT_GROUP = "agentstore.backends"

Durability = Literal["fsync", "flush"]


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """What `agentstore.open()` was told besides the target; a backend uses what fits it."""

    read_only: bool = False
    """Never write (a data directory you cannot write to, a read replica)."""
    durability: Durability = "fsync"
    """For local storage: sync each append to disk, or hand it to the OS."""
    read_url: str | None = None
    """For a database: a read replica for `replay`, `get_events` and listings."""
    token: str | None = None
    """For a server: the bearer token."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything else passed to `open()` as a keyword, for third-party backends."""


BackendFactory = Callable[[str, BackendOptions], Backend]
"""`factory(target, options) -> Backend`: build (not open) a backend for `target`."""

# scheme -> (module, factory name, the extra that brings the module's dependencies)
_BUILT_IN: dict[str, tuple[str, str, str | None]] = {
    "file": ("agentstore.backends.registry", "_open_file", None),
    "memory": ("agentstore.backends.registry", "_open_memory", None),
    "postgresql": ("agentstore.backends.postgres", "open_backend", "postgres"),
    "postgres": ("agentstore.backends.postgres", "open_backend", "postgres"),
    "grpc": ("agentstore.backends.remote", "open_backend", "server"),
    "grpcs": ("agentstore.backends.remote", "open_backend", "server"),
}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(target: str) -> str:
    """Return the URL scheme of `target` in lower case, or `"file"` for a plain path."""
    match = _SCHEME.match(target)
    return match.group(1).lower() if match else "file"


def backend_for(target: str | os.PathLike[str] | Backend, options: BackendOptions) -> Backend:
    """Build the backend for `target` (a path, a URL, or a `Backend`, returned as it is)."""
    if isinstance(target, Backend):
        return target
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    if not isinstance(target, str) or not target:
        raise InvalidInputError(
            f"expected a data directory path, a store URL or a Backend, not {target!r}"
        )
    return _factory(scheme_of(target))(target, options)


def _factory(scheme: str) -> BackendFactory:
    built_in = _BUILT_IN.get(scheme)
    if built_in is not None:
        module_name, attr, extra = built_in
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            hint = f"pip install 'agentstore[{extra}]'" if extra else "reinstall agentstore"
            raise BackendUnavailableError(
                f"the {scheme}:// backend needs packages that are not installed ({exc}); "
                f"install them with: {hint}"
            ) from exc
        factory: BackendFactory = getattr(module, attr)
        return factory
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name.lower() == scheme:
            try:
                loaded: BackendFactory = entry.load()
            except ImportError as exc:
                raise BackendUnavailableError(
                    f"the {scheme}:// backend ({entry.value}) could not be imported: {exc}"
                ) from exc
            return loaded
    known = sorted({*_BUILT_IN, *(e.name for e in entry_points(group=ENTRY_POINT_GROUP))})
    raise BackendUnavailableError(
        f"no backend for {scheme}:// URLs; known schemes: {', '.join(known)} "
        "(or a path for a data directory)"
    )


def _open_file(target: str, options: BackendOptions) -> Backend:
    from agentstore.backends.file import FileBackend

    path = target[len("file://") :] if target.lower().startswith("file://") else target
    if not path:
        raise InvalidInputError("file:// needs a path, e.g. file:///srv/agent-data")
    if "\x00" in path:
        raise InvalidInputError(f"a data directory's path cannot hold a NUL character: {path!r}")
    if options.durability not in ("fsync", "flush"):
        raise InvalidInputError(
            f"durability must be 'fsync' or 'flush', not {options.durability!r}"
        )
    if os.path.exists(path) and not os.path.isdir(path):
        raise InvalidInputError(f"{path} is a file, not a data directory")
    return FileBackend(path, durability=options.durability, read_only=options.read_only)


def _open_memory(target: str, options: BackendOptions) -> Backend:
    from agentstore.backends.memory import MemoryBackend

    if target.rstrip("/").lower() != "memory:":
        raise InvalidInputError(f"an in-memory store is opened as 'memory://', not {target!r}")
    return MemoryBackend()

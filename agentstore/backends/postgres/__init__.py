"""The PostgreSQL backend: `agentstore.open("postgresql://user@host/db")`.

Install it with `pip install 'agentstore[postgres]'` (it runs on asyncpg). The package is
imported only when a `postgresql://` or `postgres://` URL is opened, so `import agentstore`
never imports the driver. See docs/postgres.md.
"""

from __future__ import annotations

from typing import Any

from agentstore.backends.postgres.backend import PostgresBackend
from agentstore.backends.postgres.options import SCHEMES, PostgresOptions, parse_url
from agentstore.backends.registry import BackendOptions

__all__ = ["SCHEMES", "PostgresBackend", "PostgresOptions", "open_backend", "parse_url"]


def open_backend(
    url: str, options: BackendOptions | None = None, **overrides: Any
) -> PostgresBackend:
    """Return a (not yet opened) `PostgresBackend` for `url`: the registry's factory.

    From `options` it takes `read_url`, `read_only` and, from `extra`, any of the URL's query
    options (`schema`, `pool_max_size`, ...); `overrides` win over both. An unknown option
    raises `InvalidInputError`.
    """
    kwargs: dict[str, Any] = dict(options.extra) if options is not None else {}
    if options is not None and options.read_url is not None:
        kwargs["read_url"] = options.read_url
    kwargs.update(overrides)
    backend = PostgresBackend(url, **kwargs)
    if options is not None and options.read_only:
        backend.read_only = True
    return backend

"""Parse a PostgreSQL store URL: the connection string plus agentstore's own query options.

```text
postgresql://user:password@host:5432/db?schema=agents&pool_max_size=20&statement_timeout=10
```

agentstore's options are taken out of the query; everything else (`sslmode`, `application_name`,
...) goes to the driver as it is. Keyword arguments given to `open_backend` override the URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from agentstore.errors import InvalidInputError

__all__ = ["SCHEMES", "PostgresOptions", "parse_url"]

SCHEMES = ("postgresql", "postgres")

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(slots=True, frozen=True)
class PostgresOptions:
    """Everything the PostgreSQL backend takes from its URL (and keyword arguments)."""

    dsn: str
    """The connection string handed to the driver (agentstore's options removed)."""
    schema: str = "agentstore"
    """The schema that holds agentstore's tables (created if missing)."""
    pool_min_size: int = 1
    """Connections the pool opens at once and keeps."""
    pool_max_size: int = 10
    """Connections the pool may hold at most."""
    connect_timeout: float = 10.0
    """Seconds to wait for a new connection."""
    pool_timeout: float = 30.0
    """Seconds to wait for a free connection of the pool."""
    statement_timeout: float = 30.0
    """Seconds a statement may run; the server cancels it then (0: no limit)."""
    pgbouncer: bool = False
    """Behind pgbouncer in transaction mode: no prepared statement cache."""
    migrate: bool = True
    """Create or upgrade the schema on open (False: refuse to open an old schema)."""
    notify: bool = True
    """Send a NOTIFY after appends to sessions a follower holds a lease on, so its
    `wait_for_append` wakes at once (False: never; followers elsewhere then wait)."""
    read_url: str | None = None
    """A read replica for reads and listings (see `PostgresBackend`): its driver string."""
    read_options: PostgresOptions | None = None
    """The replica's pool: these options with those its own URL gives (`?pool_max_size=`,
    `statement_timeout=`, ...); its `schema` can only be the primary's."""

    @property
    def display(self) -> str:
        """The URL without its password, for messages."""
        return redact(self.dsn)


_OPTION_NAMES = frozenset(f.name for f in fields(PostgresOptions))


def redact(url: str) -> str:
    """Return `url` with its password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _number(name: str, raw: Any, *, integer: bool, minimum: float) -> float | int:
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number of seconds"
        raise InvalidInputError(f"PostgreSQL option {name}={raw!r}: must be {kind}") from None
    if value < minimum or value != value:
        raise InvalidInputError(f"PostgreSQL option {name}={raw!r}: must be >= {minimum:g}")
    return value


def _flag(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInputError(f"PostgreSQL option {name}={raw!r}: must be true or false")


_KINDS: dict[str, str] = {
    "schema": "schema",
    "pool_min_size": "int",
    "pool_max_size": "int",
    "connect_timeout": "float",
    "pool_timeout": "float",
    "statement_timeout": "float",
    "pgbouncer": "flag",
    "migrate": "flag",
    "notify": "flag",
    "read_url": "url",
}


def _convert(name: str, raw: Any) -> Any:
    kind = _KINDS[name]
    if kind == "int":
        return _number(name, raw, integer=True, minimum=1)
    if kind == "float":
        return _number(name, raw, integer=False, minimum=0)
    if kind == "flag":
        return _flag(name, raw)
    if kind == "url":  # parsed (and refused if it is not a PostgreSQL URL) by `_with_replica`
        return None if raw is None else str(raw)
    if not isinstance(raw, str) or not _SCHEMA_NAME.fullmatch(raw):
        raise InvalidInputError(
            f"PostgreSQL option schema={raw!r}: use 1-63 lower-case letters, digits and _, "
            "starting with a letter or _"
        )
    return raw


def _check_ports(url: str, netloc: str) -> None:
    """Refuse a port that is not a number from 1 to 65535, in each `host:port` of the URL.

    The driver would fail on it with a ValueError or OverflowError deep in connecting.
    """
    for host in netloc.rpartition("@")[2].split(","):  # `h1:5432,h2:5433`: several hosts
        after = host.rpartition("]")[2] if host.startswith("[") else host  # [::1]:5432
        port = after.rpartition(":")[2] if ":" in after else ""
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise InvalidInputError(
                f"invalid PostgreSQL URL {redact(url)!r}: port {port!r} is not a number "
                "from 1 to 65535"
            )


def parse_url(url: str, **overrides: Any) -> PostgresOptions:
    """Split `url` into the driver's connection string and agentstore's options.

    Raises `InvalidInputError` for another scheme, an unknown keyword or a bad value.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL": the URL cannot be shown redacted
        raise InvalidInputError(f"invalid PostgreSQL URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise InvalidInputError(
            f"not a PostgreSQL URL: {redact(url)!r} (use postgresql://user@host/db)"
        )
    _check_ports(url, parts.netloc)
    ours: dict[str, Any] = {}
    passed: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "read_url":
            # The driver would take it for a server setting and fail on connecting; and a
            # URL in a query, unless percent-encoded, gives its own options to this one.
            raise InvalidInputError(
                f"{redact(url)!r}: read_url is not an option of the URL's query: pass the "
                "replica as read_url=... (the CLI's --read-store)"
            )
        if key in _KINDS:
            ours[key] = _convert(key, value)
        else:
            passed.append((key, value))
    for key, value in overrides.items():
        if key not in _KINDS:
            known = ", ".join(sorted(_KINDS))
            raise InvalidInputError(f"unknown PostgreSQL option {key!r} (known: {known})")
        ours[key] = _convert(key, value)
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(passed)))
    options = PostgresOptions(dsn=dsn)
    options = replace(options, **{k: v for k, v in ours.items() if k in _OPTION_NAMES})
    _check_pool(options)
    if options.read_url is not None:
        options = _with_replica(options, options.read_url)
    return options


def _check_pool(options: PostgresOptions) -> None:
    if options.pool_min_size > options.pool_max_size:
        raise InvalidInputError(
            f"PostgreSQL options: pool_min_size ({options.pool_min_size}) is above "
            f"pool_max_size ({options.pool_max_size})"
        )


def _with_replica(options: PostgresOptions, read_url: str) -> PostgresOptions:
    """`options` with the replica's own: what its URL sets over the primary's settings."""
    replica = parse_url(read_url)
    given = {key for key, _ in parse_qsl(urlsplit(read_url).query) if key in _KINDS}
    if "schema" in given and replica.schema != options.schema:
        raise InvalidInputError(
            f"the read replica's schema={replica.schema!r} is not the primary's "
            f"({options.schema!r}): a replica holds the primary's tables"
        )
    own = {
        key: getattr(replica, key)
        for key in given - {"schema", "migrate", "notify"}
        if key in _OPTION_NAMES
    }
    if "pool_max_size" in given and "pool_min_size" not in given:
        # A smaller pool for the replica keeps the primary's minimum only up to its size.
        own["pool_min_size"] = min(options.pool_min_size, replica.pool_max_size)
    read = replace(options, dsn=replica.dsn, read_url=None, **own)
    if read.pool_min_size > read.pool_max_size:
        raise InvalidInputError(
            f"the read replica's pool_min_size ({read.pool_min_size}) is above its "
            f"pool_max_size ({read.pool_max_size})"
        )
    return replace(options, read_url=replica.dsn, read_options=read)

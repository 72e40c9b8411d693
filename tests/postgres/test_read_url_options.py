"""A read replica's URL sets its own pool and timeouts; its schema can only be the primary's.

`read_url` (`--read-store`) took the replica's host from its URL and silently dropped the
options in its query (review 9b): `?statement_timeout=` for long reports on the replica,
`?pool_max_size=` for its own connection limit.
"""

from __future__ import annotations

import pytest

import agentstore
from agentstore import InvalidInputError
from agentstore.backends.postgres import PostgresBackend
from tests.cli_process import agentstore_cli


def _replica(store: agentstore.Store) -> PostgresBackend:
    backend = store.backend
    assert isinstance(backend, PostgresBackend)
    return backend


async def test_the_replica_pool_takes_the_options_of_its_own_url(
    pg_url: str, pg_database_url: str
) -> None:
    read_url = f"{pg_database_url}?pool_max_size=3&statement_timeout=7"
    async with agentstore.open(pg_url, read_url=read_url) as store:
        backend = _replica(store)
        replica, primary = backend._replica, backend.db
        assert replica is not None
        assert (replica.max_size, primary.max_size) == (3, 10)
        # The server runs the replica's statements under its own timeout.
        assert await replica.fetchval("SHOW statement_timeout") == "7s"
        assert await primary.fetchval("SHOW statement_timeout") == "30s"
        sid = (await store.create_session()).id
        assert await store.replay(sid) == []


async def test_a_replica_of_another_schema_is_refused(pg_url: str, pg_database_url: str) -> None:
    with pytest.raises(InvalidInputError, match="not the primary's"):
        agentstore.open(pg_url, read_url=f"{pg_database_url}?schema=elsewhere")


async def test_the_cli_read_store_keeps_its_options(pg_url: str, pg_database_url: str) -> None:
    async with agentstore.open(pg_url) as store:  # the schema, made on the primary
        await store.create_session(name="listed")
    result = agentstore_cli(
        "--store", pg_url, "--read-store", f"{pg_database_url}?schema=other", "sessions"
    )
    assert result.returncode == 2  # a usage error, as any bad --store URL
    assert "not the primary's" in result.stderr
    assert "Traceback" not in result.stderr
    ok = agentstore_cli(
        "--store", pg_url, "--read-store", f"{pg_database_url}?statement_timeout=7", "sessions"
    )
    assert ok.returncode == 0, ok.stderr
    assert "listed" in ok.stdout

"""A fresh PostgreSQL database for the run, and a fresh schema per test.

The server comes from `AGENTSTORE_TEST_POSTGRES_URL` (default: the project machines'
`postgresql://postgres@127.0.0.1:5432/postgres`). The run creates `agentstore_test_<random>`
and drops it at the end. Without a reachable server the tests are skipped with the reason,
except in CI (`CI` set), where they fail: CI must start the server (.ci/run does).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

asyncpg = pytest.importorskip("asyncpg", reason="agentstore[postgres] is not installed")

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The maintenance URL of the test server."""
    return os.environ.get("AGENTSTORE_TEST_POSTGRES_URL", DEFAULT_URL)


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}", query=""))


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A database made for this test run (dropped at the end)."""
    admin = server_url()
    name = f"agentstore_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"no PostgreSQL server reachable at {admin} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must start it (.ci/run)", pytrace=False)
        pytest.skip(f"{message}; set AGENTSTORE_TEST_POSTGRES_URL")
    try:
        yield with_database(admin, name)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_schema() -> str:
    """A schema name of this test's own."""
    return f"t_{secrets.token_hex(6)}"


@pytest.fixture
def pg_url(pg_database_url: str, pg_schema: str) -> str:
    """A store URL on this run's database, in this test's own schema."""
    return f"{pg_database_url}?schema={pg_schema}"


@pytest.fixture
async def admin(pg_database_url: str) -> AsyncIterator[Any]:
    """A plain asyncpg connection to this run's database, for looking behind the store."""
    import asyncpg

    conn = await asyncpg.connect(pg_database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved snapshots wait for an append (or the close) however slow the machine."""
    from agentstore.backends.postgres import snapshots

    monkeypatch.setattr(snapshots, "RIDE_WAIT", 3600.0)

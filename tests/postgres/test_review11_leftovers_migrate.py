"""Review 11's leftover: `agentstore migrate` against a read replica (a hot standby).

`--check` told a replica that lags its primary (a schema migrated on the primary reaches it
only once it has replayed that far) to `run: agentstore migrate --store <the replica>`, and
that command began a migration there: it took the migration lock and sent CREATE SCHEMA,
which the standby refused. A standby's version is reported (the one it has), it is never
written to, and one that is behind is told to be migrated through its primary.

A real streaming replica (tests/postgres/test_replica.py's fixture) whose replay is paused,
and the CLI as a real process. That nothing is tried on the replica is seen through the
migration's advisory lock (advisory locks work on a hot standby): held there by the test, a
migration that began would wait for it.
"""

from __future__ import annotations

import asyncpg
import pytest

from agentstore.backends.postgres.schema import current_version
from tests.cli_process import agentstore_cli
from tests.postgres.test_replica import (  # the real streaming replica of that module
    _caught_up,
    _set_replay,
    replica_port,
    replica_url,
)

__all__ = ["replica_port", "replica_url"]  # fixtures, used by name

pytestmark = pytest.mark.slow


async def test_migrate_against_a_lagging_replica_reports_its_version_and_writes_nothing(
    pg_url: str, replica_url: str, pg_schema: str
) -> None:
    primary_dsn, replica_dsn = pg_url.split("?")[0], replica_url.split("?")[0]
    await _caught_up(primary_dsn, replica_dsn)
    await _set_replay(replica_dsn, paused=True)
    lock = await asyncpg.connect(replica_dsn)
    try:
        await lock.execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))", f"agentstore:{pg_schema}"
        )
        # The primary is migrated; the replica has not replayed it yet.
        assert agentstore_cli("migrate", "--store", pg_url).returncode == 0
        now = current_version()
        for args in (("--check",), ()):
            out = agentstore_cli("migrate", "--store", replica_url, *args, timeout=60)
            assert out.returncode == 1, out
            assert (
                out.stdout
                == f"schema {pg_schema!r}: version 0 of {now} (behind, a read-only standby)\n"
            )
            assert out.stderr.count("\n") == 1, out.stderr
            assert "read-only standby" in out.stderr and "migrate its primary" in out.stderr
            assert replica_url not in out.stderr  # no command that would write to it
    finally:
        await lock.close()
        await _set_replay(replica_dsn, paused=False)
    await _caught_up(primary_dsn, replica_dsn)
    for args in (("--check",), ()):
        out = agentstore_cli("migrate", "--store", replica_url, *args)
        assert out.returncode == 0, out
        assert (
            out.stdout
            == f"schema {pg_schema!r}: version {now} of {now} (current, a read-only standby)\n"
        )

"""The PostgreSQL backend passes the conformance contract exactly as memory and file do."""

from __future__ import annotations

import pytest

from agentstore.backends.postgres import PostgresBackend
from agentstore.testing.conformance import BackendContract, BackendFactory


class TestPostgresBackend(BackendContract):
    @pytest.fixture
    def backend_factory(self, pg_url: str) -> BackendFactory:
        # Every store of a test opens its own pool on the same schema: a "reopen".
        return lambda: PostgresBackend(pg_url, pool_max_size=4)

"""Fixtures shared by the framework integration tests (neutral: any integration may add)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import agentstore


@pytest.fixture(params=["memory", "file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[agentstore.Store]:
    """An open store: in memory, then on a data directory under `tmp_path`."""
    if request.param == "memory":
        opened = agentstore.open(in_memory=True)
    else:
        opened = agentstore.open(tmp_path / "agent-data")
    async with opened as s:
        yield s

"""Our memory and file backends pass `agentstore.testing.conformance.BackendContract`."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentstore.backends.file import FileBackend
from agentstore.backends.memory import MemoryBackend
from agentstore.testing.conformance import BackendContract, BackendFactory


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def backend_factory(self) -> BackendFactory:
        shared = MemoryBackend()  # "reopening" a memory store reuses the same backend
        return lambda: shared


class TestFileBackend(BackendContract):
    @pytest.fixture
    def backend_factory(self, tmp_path: Path) -> BackendFactory:
        return lambda: FileBackend(tmp_path / "agent-data")

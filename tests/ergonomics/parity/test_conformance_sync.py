"""The conformance contract, every test run through `SyncStore` (see conftest.py)."""

from __future__ import annotations

from tests.backends import test_contract as contract
from tests.ergonomics.parity.conftest import ViaSyncFixtures


class TestMemoryViaSync(ViaSyncFixtures, contract.TestMemoryBackend):
    """Memory, through the blocking portal."""


class TestFileViaSync(ViaSyncFixtures, contract.TestFileBackend):
    """A data directory, through the blocking portal."""

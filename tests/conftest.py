"""Fixtures shared by the whole suite."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# grpc reads its environment as it loads: the server package's settings (see
# agentstore/server/__init__.py) come first, so in-process servers and clients run as
# `agentstore serve` and the remote backend do.
import agentstore.server  # noqa: F401

# The machines are shared and noisy: a property test's example can take seconds when a
# neighbour is busy. Hypothesis' time limits (a 200 ms deadline per example, the "too slow"
# health check) then fail tests that are correct; the properties are what is checked.
settings.register_profile("agentstore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("agentstore")

FIXTURES = Path(__file__).parent / "fixtures"
GO_DATA = FIXTURES / "go-agent-data"
GO_SHORT = "d7c07711-e173-4dad-94ca-e73c7e84552b"
GO_LONG = "cad4e0ba-27ab-47d6-8db5-e400ab6031be"


@pytest.fixture
def go_data(tmp_path: Path) -> Path:
    """A writable copy of the data directory written by the Go original."""
    target = tmp_path / "go-agent-data"
    shutil.copytree(GO_DATA, target)
    return target


@pytest.fixture
def collector_on() -> Iterator[None]:
    """Run the test with the cyclic garbage collector on, and leave it as it was."""
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not was:
            gc.disable()


@pytest.fixture
def eager_collector() -> Iterator[tuple[int, int, int]]:
    """Thresholds that make the collector walk the whole heap every few hundred objects.

    The test process's heap is frozen first (as a long-running agent's start-up heap, see
    docs/performance.md): a full collection runs only once the objects made since the last
    one reach a quarter of those it found, so with pytest's heap in play none would.
    """
    was_on, before = gc.isenabled(), gc.get_threshold()
    eager = (100, 2, 2)
    gc.collect()
    gc.freeze()
    gc.collect()  # finds nothing: the collector now counts what the test makes
    gc.enable()
    gc.set_threshold(*eager)
    try:
        yield eager
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
        if not was_on:
            gc.disable()

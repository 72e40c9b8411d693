"""Fixtures shared by the framework integration tests (neutral: any integration may add)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
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


@pytest.fixture(autouse=True)
def _offline_frameworks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No framework may trace to a vendor's cloud or send telemetry from a test."""
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING_V2"):
        monkeypatch.setenv(name, "false")
    for name in (
        "LANGSMITH_API_KEY",
        "LANGCHAIN_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        # ADK exports its spans only when one of these is set.
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "GOOGLE_CLOUD_AGENT_ENGINE_ENABLE_TELEMETRY",
    ):
        monkeypatch.delenv(name, raising=False)
    # The OpenAI Agents SDK would export traces to OpenAI: off while its tests run (its
    # switch is a function, not a variable; the SDK is loaded once a test module used it).
    agents = sys.modules.get("agents")
    if agents is None:
        yield
        return
    agents.set_tracing_disabled(True)
    yield
    agents.set_tracing_disabled(False)

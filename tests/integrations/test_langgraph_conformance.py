"""AgentStoreSaver against LangGraph's own checkpointer conformance suite.

`langgraph-checkpoint-conformance` runs one suite per capability (put, put_writes,
get_tuple, list, delete_thread, and the optional copy_thread...) on a fresh saver from a
registered factory; each capability is one test here so a failure names its checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    Capability,
)

import agentstore
from agentstore.integrations.langgraph import AgentStoreSaver

# The optional capabilities AgentStoreSaver implements; delete_for_runs and prune would
# rewrite an append-only log, so they are left to LangGraph's "not supported" default.
SUPPORTED = sorted(c.value for c in BASE_CAPABILITIES | {Capability.COPY_THREAD})


def _registered(kind: str, data_dir: Path) -> object:
    @checkpointer_test(name=f"AgentStoreSaver[{kind}]")
    async def factory() -> AsyncIterator[AgentStoreSaver]:
        opened = agentstore.open(in_memory=True) if kind == "memory" else agentstore.open(data_dir)
        async with opened as store:
            yield AgentStoreSaver(store)

    return factory


@pytest.mark.parametrize("kind", ["memory", "file"])
@pytest.mark.parametrize("capability", SUPPORTED)
async def test_conformance(kind: str, capability: str, tmp_path: Path) -> None:
    report = await validate(_registered(kind, tmp_path / "data"), capabilities={capability})  # type: ignore[arg-type]
    result = report.results[capability]
    assert result.detected, f"{capability} is not implemented"
    assert result.passed, "\n".join(result.failures)
    assert result.tests_passed > 0


async def test_unsupported_capabilities_are_reported_as_such(tmp_path: Path) -> None:
    """delete_for_runs and prune are not claimed (the suite skips them, not passes them)."""
    report = await validate(
        _registered("memory", tmp_path), capabilities={"prune", "delete_for_runs"}
    )  # type: ignore[arg-type]
    assert report.results["prune"].detected is False
    assert report.results["delete_for_runs"].detected is False

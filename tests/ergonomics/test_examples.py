"""examples/async_agent.py and examples/sync_agent.py run and record what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import agentstore
from agentstore import EventType
from agentstore.testing import check_events

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, data: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.parametrize("name", ["async_agent.py", "sync_agent.py"])
def test_example_records_calls_results_errors_and_costs(name: str, tmp_path: Path) -> None:
    out = run_example(name, tmp_path / "data")
    sid = out.split()[1]
    with agentstore.open_sync(tmp_path / "data", read_only=True) as store:
        events = store.get_events(sid)
        state = store.get_state(sid)
    assert state.errors == 1
    assert state.open_calls == {}
    assert state.tokens.cost_usd > 0  # priced by the store: the example gives no cost
    responses = [e for e in events if e.type == EventType.LLM_RESPONSE]
    assert (responses[0].metadata.extra or {})["price"].startswith("genai-prices/")
    check_events(
        events,
        [EventType.USER_MESSAGE, EventType.TOOL_CALLED, EventType.TOOL_RESULT, EventType.ERROR],
        exact=False,
    )

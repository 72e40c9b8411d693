"""One naming in the JSON a user sees (input/output), Go names and exact sums on disk."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

import agentstore
from agentstore import State
from agentstore_cli.app import app

# Ten calls of $0.009 sum to 0.08999999999999998 in floats: noise a user should not see.
COSTS = [0.009] * 10


async def test_state_json_says_input_output_and_rounds_cost(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with agentstore.open(data, snapshot_interval=5) as store:
        session = await store.create_session()
        for cost in COSTS:
            await store.append(
                session.id,
                agentstore.llm_response("gpt-4o", "x", tokens_in=3, tokens_out=2, cost_usd=cost),
            )
        state = await store.get_state(session.id)
    assert sum(COSTS) != 0.09  # the noise is real
    shown = orjson.loads(state.model_dump_json())["tokens"]
    assert shown == {"input": 30, "output": 20, "cost_usd": 0.09, "total": 50}
    assert state.model_dump()["tokens"]["cost_usd"] == 0.09
    # The snapshot keeps the Go original's names and the exact sum, and reads back.
    snapshot = orjson.loads((data / "snapshots" / f"{session.id}.json").read_bytes())
    assert snapshot["state"]["tokens"]["in"] == 30
    assert snapshot["state"]["tokens"]["out"] == 20
    assert snapshot["state"]["tokens"]["cost_usd"] == sum(COSTS)
    assert "input" not in snapshot["state"]["tokens"]
    assert State.model_validate(snapshot["state"]).tokens.input == 30
    # Older agentstore wrote user-facing names nowhere, but both forms are accepted.
    assert State.model_validate(orjson.loads(state.model_dump_json())).tokens.output == 20


def test_stats_json_rounds_costs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with agentstore.open_sync(data) as store:
        session = store.create_session()
        for cost in COSTS:
            store.append(
                session.id, agentstore.llm_response("gpt-4o", "x", tokens_in=1, cost_usd=cost)
            )
    result = CliRunner().invoke(app, ["--data-dir", str(data), "stats", session.id, "-o", "json"])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.stdout)
    assert doc["tokens"]["cost_usd"] == 0.09
    assert doc["models"]["gpt-4o"]["cost_usd"] == 0.09
    assert set(doc["tokens"]) >= {"input", "output"}

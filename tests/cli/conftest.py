"""Fixtures for the CLI tests: an isolated data directory and deterministic sessions."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner, Result

import agentstore
from agentstore import Event, Metadata
from agentstore_cli.app import app

BASE_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BIN = Path(sys.executable).parent

# Spec of one event: (type, payload, metadata fields, milliseconds after BASE_TIME).
EventSpec = tuple[str, Any, dict[str, Any], float]


@pytest.fixture(autouse=True)
def _cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at a fresh data directory and make its output deterministic."""
    data = tmp_path / "agent-data"
    monkeypatch.setenv("AGENTSTORE_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "100")
    for name in ("NO_COLOR", "FORCE_COLOR", "AGENTSTORE_DEBUG", "TERMINAL_WIDTH", "PY_COLORS"):
        monkeypatch.delenv(name, raising=False)
    return data


@pytest.fixture
def data_dir(_cli_env: Path) -> Path:
    """The data directory the CLI uses by default in these tests (may not exist yet)."""
    return _cli_env


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run the CLI in-process: `cli("replay", sid, env={...})`."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


def seed_session(
    data_dir: Path,
    events: Sequence[EventSpec],
    *,
    session_id: str,
    name: str | None = None,
    labels: dict[str, str] | None = None,
    created: datetime = BASE_TIME,
    budget: agentstore.Budget | None = None,
) -> str:
    """Write a session with fixed ids and timestamps (through `import_session`)."""
    stored: list[Event] = []
    for seq, (kind, payload, meta, offset_ms) in enumerate(events, start=1):
        stored.append(
            Event(
                id=f"{session_id}-{seq}",
                session_id=session_id,
                sequence_number=seq,
                type=kind,
                payload=payload,
                timestamp=created + timedelta(milliseconds=offset_ms),
                metadata=Metadata(**meta),
            )
        )
    session: dict[str, Any] = {
        "id": session_id,
        "name": name,
        "labels": labels or {},
        "created_at": created,
        "updated_at": created,
    }
    if budget is not None:
        session["budget"] = budget.model_dump()

    async def write() -> None:
        async with agentstore.open(data_dir) as store:
            await store.import_session(session, stored)

    anyio.run(write)
    return session_id


FLIGHT_EVENTS: list[EventSpec] = [
    (
        "user_message",
        {"content": "Find flights from Berlin to Munich on Friday", "role": "user"},
        {},
        0,
    ),
    (
        "plan_created",
        {"goal": "cheapest", "steps": ["search_flights", "rank", "recommend"]},
        {},
        12,
    ),
    (
        "tool_called",
        {"tool": "search_flights", "args": {"from": "BER", "to": "MUC"}},
        {"tool_name": "search_flights", "call_id": "c1"},
        30,
    ),
    (
        "error",
        {"error": "flight API timed out", "kind": "TimeoutError", "recoverable": True},
        {"call_id": "c1", "tool_name": "search_flights"},
        5030,
    ),
    (
        "tool_called",
        {"tool": "search_flights", "args": {"from": "BER", "to": "MUC"}},
        {"tool_name": "search_flights", "call_id": "c2"},
        5040,
    ),
    # No duration_ms: the CLI pairs it with its call by call_id (1.25 s).
    (
        "tool_result",
        {
            "tool": "search_flights",
            "result": [{"flight": "EW 8040", "price": 65}, {"flight": "LH 1938", "price": 89}],
        },
        {"tool_name": "search_flights", "call_id": "c2"},
        6290,
    ),
    (
        "llm_request",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "Pick the cheapest flight"}]},
        {"model": "gpt-4o", "call_id": "m1", "tokens_in": 850},
        6300,
    ),
    (
        "llm_response",
        {"model": "gpt-4o", "content": "Take Eurowings EW 8040 for 65 EUR."},
        {"model": "gpt-4o", "call_id": "m1", "tokens_out": 320, "cost_usd": 0.018},
        8100,
    ),
    ("state_updated", {"stage": "done", "recommended": "EW 8040"}, {}, 8110),
    ("cache_hit", {"key": "BER-MUC"}, {}, 65_000),
]
"""A flight-search run with every built-in type, a recoverable error and a custom type."""

FLIGHT_ID = "5f1e0c2a-9b1d-4e0f-8a55-0123456789ab"


@pytest.fixture
def flight(data_dir: Path) -> str:
    """The id of the deterministic flight-search session in the default data directory."""
    return seed_session(
        data_dir,
        FLIGHT_EVENTS,
        session_id=FLIGHT_ID,
        name="flight-search",
        labels={"agent": "travel", "env": "test"},
    )

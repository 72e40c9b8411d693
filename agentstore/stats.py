"""Session statistics: per-type, per-model and per-tool figures from one pass over a log.

The pure computation behind `agentstore stats --format json` and the server's
`GET /v1/sessions/{id}/stats`: both return `stats_json(...)`, so they always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from agentstore.events import Event, EventType
from agentstore.pricing import is_unpriced, round_usd
from agentstore.session import Session
from agentstore.state import State

__all__ = ["SessionStats", "collect_stats", "stats_json"]


@dataclass
class _Model:
    requests: int = 0
    responses: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


@dataclass
class _Tool:
    calls: int = 0
    results: int = 0
    failed: int = 0
    timed: int = 0
    total_ms: float = 0.0


@dataclass
class SessionStats:
    """Per-type, per-model and per-tool figures of a session, from one pass over its log."""

    types: Counter[str] = field(default_factory=Counter)
    models: dict[str, _Model] = field(default_factory=dict)
    tools: dict[str, _Tool] = field(default_factory=dict)
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    last_error: str | None = None
    unpriced: int = 0
    """LLM calls with tokens but no known cost: they count $0 toward cost and budget."""
    _calls: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        """Count one event."""
        kind = str(event.type)
        meta = event.metadata
        self.types[kind] += 1
        if self.first_ts is None:
            self.first_ts = event.timestamp
        self.last_ts = event.timestamp
        payload = event.payload if isinstance(event.payload, dict) else {}
        if kind in (EventType.LLM_REQUEST, EventType.LLM_RESPONSE):
            name = meta.model or payload.get("model") or "(unknown)"
            model = self.models.setdefault(str(name), _Model())
            if kind == EventType.LLM_REQUEST:
                model.requests += 1
            else:
                model.responses += 1
            model.tokens_in += meta.tokens_in or 0
            model.tokens_out += meta.tokens_out or 0
            model.cost_usd += meta.cost_usd or 0.0
            if is_unpriced(meta):
                self.unpriced += 1
        elif kind == EventType.TOOL_CALLED:
            name = str(meta.tool_name or payload.get("tool") or "(unknown)")
            self.tools.setdefault(name, _Tool()).calls += 1
            if meta.call_id is not None:
                self._calls[meta.call_id] = (name, event.timestamp)
        elif kind == EventType.TOOL_RESULT:
            self._tool_result(event, payload)
        elif kind == EventType.ERROR:
            call = self._calls.pop(meta.call_id, None) if meta.call_id is not None else None
            if call is not None:  # the error ended a tool call: that call failed
                self.tools.setdefault(call[0], _Tool()).failed += 1
            message = payload.get("error") or payload.get("message") or event.payload
            self.last_error = (
                message if isinstance(message, str) else orjson.dumps(message).decode()
            )

    def _tool_result(self, event: Event, payload: dict[str, Any]) -> None:
        meta = event.metadata
        call = self._calls.pop(meta.call_id, None) if meta.call_id is not None else None
        name = meta.tool_name or payload.get("tool") or (call[0] if call else None)
        tool = self.tools.setdefault(str(name or "(unknown)"), _Tool())
        tool.results += 1
        if payload.get("error") is not None:
            tool.failed += 1
        duration: float | None = None
        if meta.duration_ms is not None:
            duration = float(meta.duration_ms)
        elif call is not None and call[1] is not None and event.timestamp is not None:
            duration = (event.timestamp - call[1]).total_seconds() * 1000
        if duration is not None:
            tool.timed += 1
            tool.total_ms += duration

    @property
    def duration_ms(self) -> float:
        """Wall time from the first to the last event, in milliseconds."""
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return (self.last_ts - self.first_ts).total_seconds() * 1000


async def collect_stats(events: AsyncIterable[Event]) -> SessionStats:
    """Fold an async iterable of events into `SessionStats`."""
    result = SessionStats()
    async for event in events:
        result.add(event)
    return result


def stats_json(
    info: Session, state: State, figures: SessionStats, at: int | None
) -> dict[str, Any]:
    """Return the `stats --format json` object."""
    budget = state.budget_remaining
    return {
        "session": info.to_dict(),
        "at_seq": at,
        "events": state.event_count,
        "first_event_at": _iso(figures.first_ts),
        "last_event_at": _iso(figures.last_ts),
        "duration_ms": round(figures.duration_ms, 3),
        "tool_calls": state.tool_calls,
        "errors": state.errors,
        "last_error": figures.last_error,
        "tokens": {
            "input": state.tokens.input,
            "output": state.tokens.output,
            "total": state.tokens.total,
            "cost_usd": round_usd(state.tokens.cost_usd),
            "unpriced_calls": figures.unpriced,
        },
        "budget": (
            {
                **(state.budget.model_dump() if state.budget is not None else {}),
                "remaining_cost_usd": (
                    round_usd(budget.cost_usd) if budget.cost_usd is not None else None
                ),
                "remaining_tokens": budget.tokens,
            }
            if budget is not None
            else None
        ),
        "types": dict(sorted(figures.types.items())),
        "models": {
            name: {
                "calls": max(m.requests, m.responses),
                "tokens_in": m.tokens_in,
                "tokens_out": m.tokens_out,
                "cost_usd": round_usd(m.cost_usd),
            }
            for name, m in sorted(figures.models.items())
        },
        "tools": {
            name: {
                "calls": t.calls,
                "results": t.results,
                "failed": t.failed,
                "total_ms": round(t.total_ms, 3),
                "mean_ms": round(t.total_ms / t.timed, 3) if t.timed else None,
            }
            for name, t in sorted(figures.tools.items())
        },
        "open_calls": [
            {"call_id": call_id, **call.model_dump()}
            for call_id, call in sorted(
                state.open_calls.items(), key=lambda kv: kv[1].sequence_number
            )
        ],
    }


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts is not None else None

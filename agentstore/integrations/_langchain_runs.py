"""The bookkeeping behind `AgentStoreCallbackHandler`: runs in flight (and the errors
recorded under them), and reading names, models and messages out of LangChain's callback
arguments (duck-typed, so this module imports no framework)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from agentstore.tracking import to_json_value

__all__ = ["Run", "RunTree", "is_control_flow", "message_json", "model_of", "run_name"]


class Run:
    """What a started run needs when it ends: its session and how to label its events."""

    __slots__ = ("call_id", "model", "name", "provider", "root", "session_id", "started")

    def __init__(
        self,
        session_id: str,
        *,
        root: object = None,
        name: str = "",
        call_id: str | None = None,
        model: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.root = root
        """The run id of the outermost run this one is part of (its own if none)."""
        self.name = name
        self.call_id = call_id
        self.model = model
        self.provider = provider
        self.started = time.perf_counter()

    def elapsed_ms(self) -> int:
        """Milliseconds since the run started."""
        return max(0, round((time.perf_counter() - self.started) * 1000))


class RunTree:
    """The runs in flight, by run id, and the exceptions already recorded under each
    outermost run (by identity), so an error climbing through nested chains, and out of
    the tool or model that raised it, is recorded once."""

    __slots__ = ("_recorded", "_runs")

    def __init__(self) -> None:
        """Start with no run in flight."""
        self._runs: dict[UUID, Run] = {}
        # Per outermost run, so a run ending never forgets what another run recorded.
        self._recorded: dict[object, dict[int, BaseException]] = {}

    def get(self, run_id: UUID | None) -> Run | None:
        """The run in flight with this id (None for None or a run not started here)."""
        return self._runs.get(run_id) if run_id is not None else None

    def add(self, run_id: UUID, run: Run) -> None:
        """Keep `run` until it ends."""
        self._runs[run_id] = run

    def pop(self, run_id: UUID) -> Run | None:
        """Remove and return the run (None if it is not in flight)."""
        return self._runs.pop(run_id, None)

    def root(self, run_id: UUID, parent_run_id: UUID | None) -> object:
        """The run id of the outermost run a run starting now is part of."""
        parent = self.get(parent_run_id)
        return parent.root if parent is not None else run_id

    def seen(self, exc: BaseException, run: Run) -> bool:
        """Whether `exc` was recorded under `run`'s outermost run; mark it recorded."""
        recorded = self._recorded.setdefault(run.root, {})
        if id(exc) in recorded:
            return True
        recorded[id(exc)] = exc
        return False

    def forget(self, run_id: UUID) -> None:
        """Drop the run, as `settle` does."""
        self.settle(self.pop(run_id), run_id)

    def settle(self, run: Run | None, run_id: UUID) -> None:
        """Drop the exceptions recorded under `run` once it was the outermost run."""
        # Once its outermost run is over, no chain can see a run's exceptions again: drop
        # them (they hold their tracebacks and frames).
        if run is not None and run.root == run_id:
            self._recorded.pop(run_id, None)
        if not self._runs:
            self._recorded.clear()


def run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    """The run's name: LangChain's `name`, the serialized name, or its class."""
    name = kwargs.get("name") or (serialized or {}).get("name")
    if not name:
        ids = (serialized or {}).get("id")
        name = ids[-1] if isinstance(ids, Sequence) and ids else default
    return str(name)


def model_of(
    serialized: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    kwargs: Mapping[str, Any],
) -> tuple[str, str | None]:
    """The model and provider of a model run, from LangChain's tracing params first."""
    meta = metadata or {}
    params = kwargs.get("invocation_params") or {}
    model = (
        meta.get("ls_model_name")
        or params.get("model")
        or params.get("model_name")
        or run_name(serialized, kwargs, "model")
    )
    provider = meta.get("ls_provider")
    return str(model), str(provider) if provider else None


def message_json(message: Any) -> dict[str, Any]:
    """A LangChain message as JSON: its role, content, tool calls and tool call id."""
    out: dict[str, Any] = {"role": message.type, "content": to_json_value(message.content)}
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = to_json_value(tool_calls)
    tool_call_id = getattr(message, "tool_call_id", None)
    if tool_call_id:
        out["tool_call_id"] = tool_call_id
    return out


def is_control_flow(exc: BaseException) -> bool:
    """Whether `exc` is LangGraph pausing or handing over (an interrupt), not a failure."""
    # LangGraph interrupts and parent-graph commands travel as exceptions (GraphBubbleUp):
    # the graph pausing or handing over, not failing.
    try:
        from langgraph.errors import GraphBubbleUp
    except ImportError:  # LangChain without LangGraph
        return False
    return isinstance(exc, GraphBubbleUp)

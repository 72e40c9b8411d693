"""The bookkeeping behind `AgentStoreCallbackHandler`: runs in flight, and reading names,
models and messages out of LangChain's callback arguments (duck-typed, so this module
imports no framework)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from agentstore.tracking import to_json_value

__all__ = ["Run", "is_control_flow", "message_json", "model_of", "run_name"]


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

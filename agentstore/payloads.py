"""Pydantic models of the recommended payloads of the built-in event types.

The typed helpers (`agentstore.user_message()`, `agentstore.tool_called()`, ...) build
events whose payload is one of these models dumped to JSON, leaving out fields that are
not set. Validate what you read back with the same model:

```python
for event in await store.replay(session.id, types=[EventType.TOOL_CALLED]):
    call = agentstore.ToolCalled.model_validate(event.payload)
    print(call.tool, call.args)
```

The field names follow the Go original's event-type documentation (`content`/`role`,
`steps`/`goal`, `tool`/`args`, `result`/`error`, `prompt`/`messages`,
`content`/`finish_reason`, `error`/`code`), so logs written by either read the same.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel

__all__ = [
    "ErrorPayload",
    "LlmRequest",
    "LlmResponse",
    "PlanCreated",
    "StateUpdated",
    "ToolCalled",
    "ToolResult",
    "UserMessage",
]


class _Payload(BaseModel):
    # Payloads written by other tools may carry more fields: keep them, never fail.
    model_config = ConfigDict(extra="allow")


class UserMessage(_Payload):
    """Payload of `user_message`: input that triggers agent work."""

    content: str
    """What the user said."""
    role: str = "user"
    """Who said it (`"user"`, `"system"`, ...)."""


class PlanCreated(_Payload):
    """Payload of `plan_created`: the agent's plan before it starts working."""

    steps: list[Any]
    """The plan's steps, in order: names, or JSON objects."""
    goal: str | None = None
    """What the plan is for."""


class ToolCalled(_Payload):
    """Payload of `tool_called`: a tool invocation, recorded before it runs."""

    tool: str
    """The tool's name."""
    args: dict[str, Any] = {}
    """The arguments it is called with (JSON values)."""


class ToolResult(_Payload):
    """Payload of `tool_result`: what a tool returned, or the error it failed with."""

    tool: str | None = None
    """The tool's name."""
    result: Any = None
    """The tool's return value (a JSON value)."""
    error: str | None = None
    """The error message, if the tool failed but still produced a result event."""


class LlmRequest(_Payload):
    """Payload of `llm_request`: a request sent to an LLM API."""

    model: str
    """The model asked."""
    messages: list[Any] | None = None
    """Chat messages sent (JSON objects such as `{"role": "user", "content": "..."}`)."""
    prompt: str | None = None
    """A plain prompt, for completion-style APIs."""


class LlmResponse(_Payload):
    """Payload of `llm_response`: what an LLM API answered."""

    model: str
    """The model that answered."""
    content: str | None = None
    """The answer's text."""
    finish_reason: str | None = None
    """Why the model stopped (`"stop"`, `"length"`, `"tool_calls"`, ...)."""


class StateUpdated(RootModel[dict[str, Any]]):
    """Payload of `state_updated`: the keys that changed and their new values."""


class ErrorPayload(_Payload):
    """Payload of `error`: something went wrong."""

    error: str
    """The error message."""
    kind: str | None = None
    """The kind of error, e.g. the exception class (`"TimeoutError"`)."""
    code: str | None = None
    """A machine-readable code, e.g. `"TIMEOUT"`."""
    traceback: str | None = None
    """The formatted traceback, if the error was an exception."""
    recoverable: bool | None = None
    """Whether the agent can carry on after it."""

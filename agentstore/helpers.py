"""Typed constructors for the built-in event types: one line per agent step.

```python
import agentstore

await store.append(sid, agentstore.user_message("Find flights BER -> MUC"))
call = agentstore.tool_called("search_flights", {"from": "BER", "to": "MUC"})
await store.append(sid, call)
await store.append(sid, agentstore.tool_result("search_flights", result=flights,
                                               call_id=call.metadata.call_id))
```

Each helper checks its arguments (a wrong type raises `InvalidEventError` before anything
is written), builds the payload from the matching model in `agentstore.payloads`, fills the
metadata (`tool_name`, `model`, tokens, `call_id`) from the arguments, and returns an
`Event` ready for `Store.append`. Fields left as `None` are left out of the payload.
"""

from __future__ import annotations

import traceback as _traceback
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from agentstore.errors import InvalidEventError
from agentstore.events import Event, EventType, Metadata, new_event
from agentstore.payloads import (
    ErrorPayload,
    LlmRequest,
    LlmResponse,
    PlanCreated,
    StateUpdated,
    ToolCalled,
    ToolResult,
    UserMessage,
)

__all__ = [
    "error",
    "llm_request",
    "llm_response",
    "new_call_id",
    "plan_created",
    "state_updated",
    "tool_called",
    "tool_result",
    "user_message",
]


def new_call_id() -> str:
    """Return a new random call id, the link between a call and its result."""
    return uuid.uuid4().hex


def _payload(payload_model: type[BaseModel], /, **fields: Any) -> dict[str, Any]:
    """Validate `fields` against a payload model and return them without the `None`s."""
    try:
        obj = payload_model(**fields)
    except ValidationError as exc:
        name = payload_model.__name__
        raise InvalidEventError(f"invalid {name} payload: {_first_error(exc)}") from exc
    # Only the top-level `None`s are dropped: the caller's nested values stay as given.
    out = {k: v for k, v in obj.__dict__.items() if v is not None}
    if obj.__pydantic_extra__:
        out.update(obj.__pydantic_extra__)
    return out


def _metadata(**fields: Any) -> Metadata:
    try:
        return Metadata(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise InvalidEventError(f"invalid metadata: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "value"
    return f"{where}: {err['msg']} (got {err.get('input')!r})"


def _name(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEventError(f"{kind} must be a non-empty string, not {value!r}")
    return value


def _call_id(value: object) -> str | None:
    if value is None:
        return None
    return _name("call_id", value)


def user_message(content: str, role: str = "user") -> Event:
    """Return a `user_message` event: `{"content": ..., "role": ...}`."""
    return new_event(EventType.USER_MESSAGE, _payload(UserMessage, content=content, role=role))


def plan_created(steps: Sequence[Any], goal: str | None = None) -> Event:
    """Return a `plan_created` event: `{"steps": [...], "goal": ...}`."""
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence):
        raise InvalidEventError(f"steps must be a list, not {type(steps).__name__}")
    return new_event(EventType.PLAN_CREATED, _payload(PlanCreated, steps=list(steps), goal=goal))


def tool_called(
    tool: str, args: Mapping[str, Any] | None = None, call_id: str | None = None
) -> Event:
    """Return a `tool_called` event: `{"tool": ..., "args": {...}}`.

    A new `call_id` is made unless one is given; pass the event's `metadata.call_id` to
    `tool_result()` (or `error()`) to link the result to the call.
    """
    _name("tool", tool)
    if args is not None and not isinstance(args, Mapping):
        raise InvalidEventError(
            f"args must be a mapping of argument names to values, not {type(args).__name__}"
        )
    payload = _payload(ToolCalled, tool=tool, args=dict(args) if args is not None else {})
    meta = _metadata(tool_name=tool, call_id=_call_id(call_id) or new_call_id())
    return new_event(EventType.TOOL_CALLED, payload, meta)


def tool_result(
    tool: str,
    result: Any = None,
    error: str | None = None,
    call_id: str | None = None,
    duration_ms: int | None = None,
) -> Event:
    """Return a `tool_result` event: `{"tool": ..., "result": ..., "error": ...}`.

    `call_id` links it to its `tool_called` event; `duration_ms` is how long the tool ran.
    """
    _name("tool", tool)
    payload = _payload(ToolResult, tool=tool, result=result, error=error)
    meta = _metadata(tool_name=tool, call_id=_call_id(call_id), duration_ms=duration_ms)
    return new_event(EventType.TOOL_RESULT, payload, meta)


def llm_request(
    model: str,
    messages: Sequence[Any] | None = None,
    prompt: str | None = None,
    tokens_in: int | None = None,
    call_id: str | None = None,
    *,
    provider: str | None = None,
) -> Event:
    """Return an `llm_request` event: `{"model": ..., "messages": [...], "prompt": ...}`.

    A new `call_id` is made unless one is given; pass it to `llm_response()`. Record the
    tokens of a call once, here or on the response: the state adds both up.
    """
    _name("model", model)
    if messages is not None and (
        isinstance(messages, str | bytes) or not isinstance(messages, Sequence)
    ):
        raise InvalidEventError(f"messages must be a list, not {type(messages).__name__}")
    payload = _payload(
        LlmRequest,
        model=model,
        messages=list(messages) if messages is not None else None,
        prompt=prompt,
    )
    meta = _metadata(
        model=model,
        provider=provider,
        tokens_in=tokens_in,
        call_id=_call_id(call_id) or new_call_id(),
    )
    return new_event(EventType.LLM_REQUEST, payload, meta)


def llm_response(
    model: str,
    content: str | None,
    tokens_in: int | None = None,
    tokens_out: int | None = None,
    cost_usd: float | None = None,
    call_id: str | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    *,
    provider: str | None = None,
    finish_reason: str | None = None,
    duration_ms: int | None = None,
) -> Event:
    """Return an `llm_response` event: `{"model": ..., "content": ..., "finish_reason": ...}`.

    Token counts go into the metadata. `tokens_in` is every input token, cached ones
    included (`cache_read_tokens` and `cache_write_tokens` are parts of it);
    `reasoning_tokens` is part of `tokens_out`. Leave `cost_usd` unset and the store
    prices the call from the model and tokens (see `agentstore.pricing`); a `cost_usd`
    you give is kept as it is.
    """
    _name("model", model)
    payload = _payload(LlmResponse, model=model, content=content, finish_reason=finish_reason)
    meta = _metadata(
        model=model,
        provider=provider,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=cost_usd,
        call_id=_call_id(call_id),
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
        duration_ms=duration_ms,
    )
    return new_event(EventType.LLM_RESPONSE, payload, meta)


def state_updated(**changes: Any) -> Event:
    """Return a `state_updated` event whose payload is the keyword arguments given.

    ```python
    await store.append(sid, agentstore.state_updated(status="awaiting_confirmation"))
    ```
    """
    if not changes:
        raise InvalidEventError("state_updated() needs at least one changed key")
    try:
        payload = StateUpdated(changes).root
    except ValidationError as exc:  # pragma: no cover - any keyword mapping is valid
        raise InvalidEventError(f"invalid StateUpdated payload: {_first_error(exc)}") from exc
    return new_event(EventType.STATE_UPDATED, payload)


def error(
    message: str | BaseException,
    kind: str | None = None,
    traceback: str | None = None,
    recoverable: bool | None = None,
    *,
    code: str | None = None,
    call_id: str | None = None,
    tool: str | None = None,
    model: str | None = None,
) -> Event:
    """Return an `error` event: `{"error": ..., "kind": ..., "code": ..., "traceback": ...}`.

    Pass an exception as `message` and its class name becomes `kind` and its traceback
    `traceback` (unless given). `call_id` (with `tool` or `model`) links the error to
    the call it ended, so the call is no longer open.
    """
    if isinstance(message, BaseException):
        exc = message
        message = _exception_text(exc)
        kind = kind if kind is not None else type(exc).__name__
        if traceback is None and exc.__traceback__ is not None:
            traceback = _storable("".join(_traceback.format_exception(exc)))
    payload = _payload(
        ErrorPayload,
        error=message,
        kind=kind,
        code=code,
        traceback=traceback,
        recoverable=recoverable,
    )
    meta = _metadata(call_id=_call_id(call_id), tool_name=tool, model=model)
    return new_event(EventType.ERROR, payload, meta)


def _exception_text(exc: BaseException) -> str:
    """An exception's message for its `error` event, whatever its `__str__` does.

    The error happened already: recording it must not fail on how the exception prints
    (a `__str__` that raises, or text the store refuses, such as a lone surrogate).
    """
    try:
        text = str(exc)
    except Exception:
        text = ""
    return _storable(text) or type(exc).__name__


def _storable(text: str) -> str:
    """`text` with what UTF-8 cannot hold (lone surrogates) replaced by "?"."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode()
    return text

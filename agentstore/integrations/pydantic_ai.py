"""Record pydantic-ai agent runs in agentstore: one capability on the agent.

```python
from agentstore.integrations.pydantic_ai import AgentStoreCapability, message_history

agent = Agent("openai:gpt-4o", capabilities=[AgentStoreCapability(store)])
result = await agent.run("Book BER -> MUC")

# Later, or in another process: continue the conversation from the store.
history = await message_history(store, result.conversation_id)
await agent.run("And back on Friday?", message_history=history)
```

Each run is recorded in the session named by `session_id`, or, when none is given, in a
session per pydantic-ai conversation (`ctx.conversation_id`: one session for every run
that continues the same message history). Recorded:

- `llm_request` / `llm_response` around each model request (timed around the wrapped
  request; model and provider from the model that served it; input, output and
  cache-read tokens; the request's newest message and the response text);
- `tool_called` / `tool_result` around each tool execution, linked by the model's
  `tool_call_id`;
- an `error` event for a model request or tool that raised (linked to its call, so the
  call is closed) and for a run that failed; the exception is always re-raised;
- at the end of a run, a `pydantic_ai_messages` event holding the run's new messages
  (pydantic-ai's own JSON form), which `message_history()` reads back to resume.

Needs `pip install 'agentstore[pydantic-ai]'` (pydantic-ai-slim).
"""

from __future__ import annotations

import contextlib
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from agentstore.errors import InvalidInputError
from agentstore.events import new_event
from agentstore.helpers import llm_response, tool_result
from agentstore.integrations._appender import SessionAppender
from agentstore.integrations._threads import mapped_session_id
from agentstore.session import validate_session_id
from agentstore.tracking import AsyncTracker, LlmCall, to_json_value, track_llm, track_tool

try:
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.exceptions import ApprovalRequired, CallDeferred
    from pydantic_ai.messages import (
        ModelMessage,
        ModelMessagesTypeAdapter,
        ModelResponse,
        TextPart,
    )
    from pydantic_ai.tools import RunContext
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "the pydantic-ai integration needs pydantic-ai-slim: pip install 'agentstore[pydantic-ai]'"
    ) from exc

if TYPE_CHECKING:
    from agentstore import Store

__all__ = [
    "MESSAGES_TYPE",
    "AgentStoreCapability",
    "conversation_session_id",
    "message_history",
]

MESSAGES_TYPE = "pydantic_ai_messages"
"""The event type holding a run's new messages: `{"run_id": ..., "messages": [...]}`."""

_RECORDED = "_agentstore_recorded"  # marks an exception already recorded by a call


def conversation_session_id(conversation_id: str) -> str:
    """Return the agentstore session id that records a pydantic-ai conversation.

    A conversation id that is a valid session id (pydantic-ai's own, UUIDs, are) is the
    session id; any other (`"user:42"`) maps to `conversation-` and 40 hex digits of its
    SHA-256, the same on every machine.
    """
    return mapped_session_id(conversation_id, "conversation-")


_USAGE_FIELDS = (
    ("input_tokens", "tokens_in"),
    ("output_tokens", "tokens_out"),
    ("cache_read_tokens", "cache_read_tokens"),
    ("cache_write_tokens", "cache_write_tokens"),
)
_Cut = tuple[AsyncTracker[LlmCall], LlmCall, dict[str, int]]
"""A request cut mid-call: its tracker, its call, and the run's usage when it began."""


def _usage_counts(usage: Any) -> dict[str, int]:
    """The token counts of a pydantic-ai usage, by agentstore's names (0 where unknown)."""
    return {ours: int(getattr(usage, theirs, 0) or 0) for theirs, ours in _USAGE_FIELDS}


def _used_since(before: dict[str, int], usage: Any) -> dict[str, int | None] | None:
    """The tokens the run used since `before`, or None if none (or no usage to tell)."""
    if usage is None:
        return None
    now = _usage_counts(usage)
    used = {name: max(0, now[name] - before[name]) for name in now}
    if not used["tokens_in"] and not used["tokens_out"]:
        return None
    return {name: value or None for name, value in used.items()}


def _mark(exc: BaseException) -> None:
    with contextlib.suppress(AttributeError):  # a few built-in exceptions refuse attributes
        setattr(exc, _RECORDED, True)


def _text(response: ModelResponse) -> str | None:
    texts = [p.content for p in response.parts if isinstance(p, TextPart)]
    return "".join(texts) if texts else None


def _tool_args(args: Any) -> dict[str, Any]:
    value = to_json_value(args)
    return value if isinstance(value, dict) else {"arguments": value}


@dataclass
class AgentStoreCapability(AbstractCapability[Any]):
    """A pydantic-ai capability that records every model request, tool call and error.

    ```python
    agent = Agent(model, capabilities=[AgentStoreCapability(store)])
    ```

    - `store`: an open `agentstore.Store`.
    - `session_id`: the session to record into (created on first use). None (the
      default): one session per conversation, named by its `conversation_id`.
    - `record_messages`: put the request's newest message in `llm_request` and the run's
      new messages in `pydantic_ai_messages` (default True; without them the run cannot
      be resumed from the store).

    A budget on the session (`agentstore.Budget`) stops the run before the next model
    request with `BudgetExceededError`.
    """

    store: Store
    session_id: str | None = None
    _: KW_ONLY
    record_messages: bool = True
    _appender: SessionAppender = field(init=False, repr=False, compare=False)
    # Model requests cancelled mid-call, by run id, still open, with the run's usage when
    # each began: see `wrap_model_request`.
    _cut: dict[str | None, list[_Cut]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if self.session_id is not None and (
            not isinstance(self.session_id, str) or not self.session_id
        ):
            raise InvalidInputError(
                "AgentStoreCapability's session_id must be a non-empty string, or None "
                "for one session per conversation"
            )
        if self.session_id is not None:
            validate_session_id(self.session_id)  # refused here, not in the middle of a run
        self._appender = SessionAppender(self.store, {"framework": "pydantic-ai"})

    @classmethod
    def get_serialization_name(cls) -> str | None:
        """Not loadable from an agent spec: it holds a live store."""
        return None

    def _session(self, ctx: RunContext[Any]) -> str:
        if self.session_id:
            return self.session_id
        conversation = ctx.conversation_id or ctx.run_id
        if not conversation:
            raise InvalidInputError("pydantic-ai gave the run no conversation id: pass session_id")
        return conversation_session_id(conversation)

    # The run ------------------------------------------------------------------

    async def wrap_run(self, ctx: RunContext[Any], *, handler: Any) -> Any:
        """Record the end of the run: its new messages, or the error that ended it."""
        sid = self._session(ctx)
        try:
            result = await handler()
        except BaseException as exc:
            closed = await self._close_cut(ctx.run_id, exc, getattr(ctx, "usage", None))
            if isinstance(exc, Exception) and not closed and not getattr(exc, _RECORDED, False):
                await self._appender.record_error(sid, exc)
            raise
        await self._close_cut(ctx.run_id, None, None)
        if self.record_messages:
            # pydantic-ai's JSON form still holds what a tool returned, NaN or an int past
            # 64 bits included, which the store refuses: made storable the forgiving way.
            messages = to_json_value(
                ModelMessagesTypeAdapter.dump_python(result.new_messages(), mode="json")
            )
            payload = {"run_id": ctx.run_id, "messages": messages}
            await self._appender.append(sid, new_event(MESSAGES_TYPE, payload))
        return result

    async def _close_cut(self, run_id: str | None, exc: BaseException | None, usage: Any) -> bool:
        """Close the run's cancelled requests with `exc`; tell whether `exc` was recorded.

        `usage`: the run's, as it ended. A streamed request that failed part-way has had
        its tokens so far added to it (an input count a provider sent first, say): they
        are recorded as an `llm_response` marked `finish_reason="error"` before the error,
        so the session's tokens, cost and budget count what the failed call used.
        """
        recorded = exc is None or getattr(exc, _RECORDED, False)
        cut = self._cut.pop(run_id, [])
        for tracker, llm, before in cut:
            if recorded:  # recorded already (or the run went on): the call was cancelled
                cancelled = anyio.get_cancelled_exc_class()()
                await tracker.__aexit__(type(cancelled), cancelled, None)
                continue
            assert exc is not None
            used = _used_since(before, usage)  # since the first cut: counted once
            if used is not None:
                response = llm_response(
                    llm.model,
                    None,
                    call_id=llm.call_id,
                    provider=llm.provider,
                    finish_reason="error",
                    **used,
                )
                await self._appender.record(llm.session_id, response, "the tokens of")
            await tracker.__aexit__(type(exc), exc, exc.__traceback__)
            _mark(exc)
            recorded = True
        return exc is not None and recorded

    # Model requests -------------------------------------------------------------

    async def wrap_model_request(
        self, ctx: RunContext[Any], *, request_context: Any, handler: Any
    ) -> ModelResponse:
        """Record `llm_request` before the request and `llm_response` (or `error`) after.

        Built on `agentstore.tracking.track_llm`: the duration is measured around the
        wrapped request, and an exception is recorded (even on cancellation) and re-raised.
        A cancelled request is closed when the run ends, with the exception that ended it:
        pydantic-ai cancels a streamed request when the consumer's stream raises, and that
        exception, not the cancellation, is why the call failed.
        """
        sid = self._session(ctx)
        model = request_context.model
        model_name = str(getattr(model, "model_name", None) or type(model).__name__)
        system = getattr(model, "system", None)
        provider = str(system) if system else None
        newest: list[Any] | None = None
        if self.record_messages and request_context.messages:
            newest = ModelMessagesTypeAdapter.dump_python(
                list(request_context.messages[-1:]), mode="json"
            )
        tracker = track_llm(self._appender, sid, model_name, newest, provider=provider)
        before = _usage_counts(ctx.usage)
        llm = await tracker.__aenter__()  # what this raises (a budget) wrap_run records
        try:
            response: ModelResponse = await handler(request_context)
            usage = response.usage
            llm.respond(
                _text(response),
                tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens or None,
                cache_write_tokens=usage.cache_write_tokens or None,
                finish_reason=response.finish_reason,
                model=response.model_name,
            )
        except anyio.get_cancelled_exc_class():
            self._cut.setdefault(ctx.run_id, []).append((tracker, llm, before))
            raise
        except BaseException as exc:
            await tracker.__aexit__(type(exc), exc, exc.__traceback__)
            _mark(exc)
            raise
        await tracker.__aexit__(None, None, None)
        return response

    # Tool calls -------------------------------------------------------------------

    async def wrap_tool_execute(
        self, ctx: RunContext[Any], *, call: Any, tool_def: Any, args: Any, handler: Any
    ) -> Any:
        """Record `tool_called` before the tool runs and `tool_result` (or `error`) after.

        Built on `agentstore.tracking.track_tool`, linked by the model's `tool_call_id`.
        A tool that asks the model to try again (`ModelRetry`) ends its call with an
        `error` event too: the call did not produce a result. A tool that hands its call
        over (`CallDeferred`, `ApprovalRequired`) fails nothing: its call is closed by a
        `tool_result` marked `"deferred": true`.
        """
        sid = self._session(ctx)
        name = str(call.tool_name)
        call_id = str(call.tool_call_id) if call.tool_call_id else None
        tracker = track_tool(self._appender, sid, name, _tool_args(args), call_id=call_id)
        tracked = await tracker.__aenter__()
        try:
            tracked.result = await handler(args)
        except (CallDeferred, ApprovalRequired):
            tracked._stop()
            handed_over = tool_result(
                name, call_id=tracked.call_id, duration_ms=tracked.duration_ms
            )
            handed_over.payload["deferred"] = True
            await self._appender.append(sid, handed_over)
            raise
        except BaseException as exc:
            await tracker.__aexit__(type(exc), exc, exc.__traceback__)
            _mark(exc)
            raise
        await tracker.__aexit__(None, None, None)
        return tracked.result


async def message_history(store: Store, session_id: str) -> list[ModelMessage]:
    """Return the messages of every recorded run of a session, oldest first.

    Pass them as `agent.run(..., message_history=...)` to continue the conversation
    (pydantic-ai then keeps the same `conversation_id`, so the new run is recorded in
    the same session). `session_id` may be a conversation id (`result.conversation_id`):
    it is mapped as `conversation_session_id` maps it. Raises `SessionNotFoundError` for
    an unknown session.
    """
    events = await store.replay(conversation_session_id(session_id), types=[MESSAGES_TYPE])
    messages: list[Any] = []
    for event in events:
        payload = event.payload
        if isinstance(payload, dict) and isinstance(payload.get("messages"), list):
            messages.extend(payload["messages"])
    return list(ModelMessagesTypeAdapter.validate_python(messages))

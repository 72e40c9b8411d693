"""Record OpenAI Agents SDK runs, and keep their conversation, in an agentstore session.

```python
from agentstore.integrations.openai_agents import AgentStoreRunHooks, AgentStoreSession

result = await Runner.run(
    agent,
    "Book BER -> MUC",
    hooks=AgentStoreRunHooks(store, session_id),          # every LLM and tool call
    session=AgentStoreSession(store, session_id),         # the conversation's items
)
```

`AgentStoreRunHooks` records, in the session: `llm_request` / `llm_response` pairs (the
model from the agent, or the `model=` you give for a model set in the run config, since
responses do not name it and hooks cannot see the run config; input, output, cached
and reasoning tokens from the usage; `duration_ms`), `tool_called` / `tool_result` pairs
linked by the SDK's `tool_call_id`, and `agent_started`, `agent_finished` and
`agent_handoff` events. Used as `async with hooks:` around the run, it also records an
exception that ends the run as an `error` event that closes the calls it interrupted
(without it, they stay in `state.open_calls`); runs at once through one hooks object
each close only their own. The calls go through `agentstore.tracking`'s trackers,
entered in a start hook and left in the matching end hook.

`AgentStoreSession` is the SDK's `Session` protocol on the store: each item is an
`openai_agents_item` event. The runner removes items with `pop_item()` and
`clear_session()`; those append an `openai_agents_pop` / `openai_agents_clear` marker
that the item view honours, so the log stays append-only.

Needs `pip install 'agentstore[openai-agents]'`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agentstore.errors import InvalidInputError
from agentstore.events import Event, new_event
from agentstore.integrations._appender import SessionAppender
from agentstore.integrations._openai_agents_session import (
    CLEAR_TYPE,
    ITEM_TYPE,
    LABELS,
    POP_TYPE,
    AgentStoreSession,
)
from agentstore.tracking import AsyncTracker, to_json_value, track_llm, track_tool

try:
    from agents import RunHooks
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "the OpenAI Agents SDK integration needs the openai-agents package: "
        "pip install 'agentstore[openai-agents]'"
    ) from exc

if TYPE_CHECKING:
    from agentstore import Store

__all__ = [
    "CLEAR_TYPE",
    "ITEM_TYPE",
    "POP_TYPE",
    "AgentStoreRunHooks",
    "AgentStoreSession",
]


# The run an `async with hooks:` block is around, seen by every hook the run calls (the
# SDK runs them in this task or in tasks it starts, which copy the context): one hooks
# object may record several runs at once, and an error closes only its own run's calls.
_RUN: ContextVar[object | None] = ContextVar("agentstore_openai_agents_run", default=None)


def _model_name(agent_model: Any, run_model: str | None) -> tuple[str, str | None]:
    """Return (model name, provider): the run config's model, else the agent's."""
    if run_model is not None:  # RunConfig.model overrides every agent's, as in the SDK
        agent_model = run_model
    if isinstance(agent_model, str):
        # The SDK sends a bare name to OpenAI; "litellm/..." and the like go elsewhere.
        return agent_model, "openai" if "/" not in agent_model else None
    if agent_model is None:
        from agents.models import get_default_model

        return get_default_model(), "openai"
    name = getattr(agent_model, "model", None)
    module = type(agent_model).__module__
    provider = "openai" if module.startswith("agents.models.openai") else None
    if isinstance(name, str) and name:
        return name, provider
    return type(agent_model).__name__, None


def _response_text(output: Sequence[Any]) -> str | None:
    """Join the text parts of a response's message items (None if it has none)."""
    texts: list[str] = []
    for item in output:
        if getattr(item, "type", None) != "message":
            continue
        for part in getattr(item, "content", ()) or ():
            text = getattr(part, "text", None)
            if isinstance(text, str):
                texts.append(text)
    return "".join(texts) if texts else None


def _tool_args(raw: object) -> dict[str, Any]:
    """The tool's arguments as a JSON object (the raw string when it is not one)."""
    if isinstance(raw, str):
        try:
            # Python's json takes NaN and Infinity, which the store refuses: made null.
            parsed = to_json_value(json.loads(raw))
        except ValueError:
            return {"arguments": raw}
        return parsed if isinstance(parsed, dict) else {"arguments": parsed}
    return {} if raw is None else {"arguments": to_json_value(raw)}


class AgentStoreRunHooks(RunHooks[Any]):
    """`RunHooks` that record a run's LLM calls, tool calls and handoffs in a session.

    ```python
    hooks = AgentStoreRunHooks(store, session.id)
    result = await Runner.run(agent, "Book BER -> MUC", hooks=hooks)
    ```

    - `store`: an open `agentstore.Store`.
    - `session_id`: the session to record into (created on first use if it does not exist).
    - `model`: the model of `RunConfig(model=...)`, if the run sets one (it overrides every
      agent's, and hooks cannot see the run config); else each agent's own model is
      recorded (its name, or the `model` attribute of a model object), else the SDK's
      default.
    - `record_messages`: put each request's input items in `llm_request` (default True).

    Use `async with hooks:` around `Runner.run` to also record the exception that ends a
    run (see the module docstring). A budget on the session (`agentstore.Budget`) stops
    the run before the next LLM call with `BudgetExceededError`.
    """

    def __init__(
        self,
        store: Store,
        session_id: str,
        *,
        model: str | None = None,
        record_messages: bool = True,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError("AgentStoreRunHooks needs a session id (a non-empty string)")
        self.store = store
        """The store the run is recorded in."""
        self.session_id = session_id
        """The session the run is recorded in."""
        self._model = model
        self._record_messages = record_messages
        self._appender = SessionAppender(store, LABELS)
        # The calls between their start and end hooks, as agentstore.tracking trackers,
        # with the run (the `async with` block, or None) that started them.
        self._open: dict[tuple[object, ...], tuple[AsyncTracker[Any], Any, object | None]] = {}
        self._runs: dict[object, Token[object | None]] = {}

    async def _record(self, event: Event) -> Event:
        return await self._appender.append(self.session_id, event)

    # Agents -----------------------------------------------------------------

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        """Record `agent_started` with the agent's name."""
        await self._record(new_event("agent_started", {"agent": agent.name}))

    async def on_agent_end(self, context: Any, agent: Any, output: Any) -> None:
        """Record `agent_finished` with the agent's name and final output."""
        payload = {"agent": agent.name, "output": to_json_value(output)}
        await self._record(new_event("agent_finished", payload))

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        """Record `agent_handoff` from one agent to the next."""
        payload = {"from_agent": from_agent.name, "to_agent": to_agent.name}
        await self._record(new_event("agent_handoff", payload))

    # LLM calls ----------------------------------------------------------------

    async def on_llm_start(
        self, context: Any, agent: Any, system_prompt: str | None, input_items: list[Any]
    ) -> None:
        """Record `llm_request`: the model, the system prompt and the input items."""
        model, provider = _model_name(agent.model, self._model)
        messages = list(input_items) if self._record_messages else None
        tracker = track_llm(
            self._appender,
            self.session_id,
            model,
            messages,
            prompt=system_prompt,
            provider=provider,
        )
        llm = await tracker.__aenter__()
        # One LLM call at a time per agent in a run: the wrapper and the agent identify it.
        self._open[(id(context), id(agent))] = (tracker, llm, _RUN.get())

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        """Record `llm_response`: the text, tokens and duration, linked to its request."""
        opened = self._open.pop((id(context), id(agent)), None)
        if opened is None:  # a start this object did not see (hooks added mid-run)
            model, provider = _model_name(agent.model, self._model)
            tracker = track_llm(self._appender, self.session_id, model, provider=provider)
            opened = (tracker, await tracker.__aenter__(), None)
        tracker, llm, _ = opened
        usage = response.usage
        in_details = getattr(usage, "input_tokens_details", None)
        out_details = getattr(usage, "output_tokens_details", None)
        llm.respond(
            _response_text(response.output),
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens,
            cache_read_tokens=getattr(in_details, "cached_tokens", None) or None,
            reasoning_tokens=getattr(out_details, "reasoning_tokens", None) or None,
        )
        await tracker.__aexit__(None, None, None)

    # Tool calls ---------------------------------------------------------------

    @staticmethod
    def _tool_key(context: Any, tool: Any) -> tuple[object, ...]:
        return (id(context), str(getattr(context, "tool_call_id", "")), str(tool.name))

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        """Record `tool_called` with the arguments and the SDK's `tool_call_id`."""
        call_id = getattr(context, "tool_call_id", None) or None
        args = _tool_args(getattr(context, "tool_arguments", None))
        tracker = track_tool(
            self._appender,
            self.session_id,
            str(tool.name),
            args,
            call_id=str(call_id) if call_id else None,
        )
        call = await tracker.__aenter__()
        self._open[self._tool_key(context, tool)] = (tracker, call, _RUN.get())

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: object) -> None:
        """Record `tool_result`, linked to its call by the `tool_call_id`.

        A function tool that raised reaches this hook as the message the SDK gives the
        model instead (its `failure_error_function`), and is recorded as that result.
        """
        opened = self._open.pop(self._tool_key(context, tool), None)
        if opened is None:  # a start this object did not see
            tracker = track_tool(self._appender, self.session_id, str(tool.name))
            opened = (tracker, await tracker.__aenter__(), None)
        tracker, call, _ = opened
        call.result = result
        await tracker.__aexit__(None, None, None)

    # Errors -------------------------------------------------------------------

    async def record_error(self, exc: BaseException) -> None:
        """Record `exc` as an `error` event closing every call of this run still open.

        "This run" is the one of the `async with hooks:` block this is called in (the
        calls other runs recorded through the same hooks at the same time stay open).
        With no call open (the run failed between calls), one `error` event is recorded.
        """
        run = _RUN.get()
        keys = [key for key, (_, _, started_in) in self._open.items() if started_in is run]
        if not keys and run is not None:
            # A run started before the block (`Runner.run_streamed` called outside it):
            # its calls carry no run, and are the ones this block's exception cut off.
            keys = [key for key, (_, _, started_in) in self._open.items() if started_in is None]
        open_calls = [self._open.pop(key) for key in keys]
        if not open_calls:
            await self._appender.record_error(self.session_id, exc)
            return
        for tracker, _, _ in open_calls:
            # The tracker records the error, linked to its call, with the duration.
            await tracker.__aexit__(type(exc), exc, exc.__traceback__)

    async def __aenter__(self) -> AgentStoreRunHooks:
        run = object()
        self._runs[run] = _RUN.set(run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and not isinstance(exc, GeneratorExit):
                await self.record_error(exc)
        finally:
            run = _RUN.get()
            if run is not None and run in self._runs:
                token = self._runs.pop(run)
                # Left in a copy of the context it was entered in (another task): nothing
                # to undo here, the copy goes away with its task.
                with contextlib.suppress(ValueError):
                    _RUN.reset(token)

"""Record LangChain and LangGraph runs in agentstore with one callback handler.

```python
from agentstore.integrations.langchain import AgentStoreCallbackHandler

handler = AgentStoreCallbackHandler(store)  # one session per thread_id
await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1"}, "callbacks": [handler]})
```

What is recorded, as agentstore's own event types (so `get_state` counts tokens, cost,
tool calls, errors and open calls):

- a chat model call: `llm_request` (model, provider, the messages) when it starts and
  `llm_response` (text, the tool calls it asked for, tokens from `usage_metadata`
  including cache and reasoning tokens, finish reason, duration) when it ends, or an
  `error`; both carry the LangChain run id as `call_id`;
- a tool call: `tool_called` (name, arguments) and `tool_result` (the output's text or
  JSON, its status) or an `error`, linked by the tool call id the model gave (a result
  closes the nearest open call with that id in the session, see `State.open_calls`); a
  tool that pauses the graph (`interrupt()`) is closed by a `tool_result` marked
  `"interrupted": true`, not an error;
- a chain (or LangGraph node) that raises: one `error` event per exception, at the
  innermost chain it left, unless it was already recorded as a tool or LLM error.

Which session: `session_id` when given (created on first use if it does not exist; a
session you created keeps its name, labels and budget). Otherwise the run's `thread_id`
(from `config["configurable"]`, which LangGraph passes to callbacks as metadata) picks
the session `thread_session_id(thread_id)`, looked up or created on first use; that is
the same session `AgentStoreSaver` checkpoints the thread into. A run with neither gets
a new session of its own, named after its root run id.

Callback errors are LangChain's business: with `raise_error=False` (its default) a failed
append is logged by LangChain and the run goes on (a call whose start was not stored
records nothing at its end); pass `raise_error=True` to stop the run instead. A budget
on the session stops it either way: `BudgetExceededError` always propagates, before the
model is called. Needs `pip install 'agentstore[langchain]'`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from agentstore.errors import BudgetExceededError
from agentstore.helpers import error as error_event
from agentstore.helpers import llm_request, llm_response, tool_called, tool_result
from agentstore.integrations._appender import check_async_store
from agentstore.integrations._langchain_runs import (
    Run,
    RunTree,
    is_control_flow,
    message_json,
    model_of,
    run_name,
)
from agentstore.integrations._langchain_sessions import SessionWriter
from agentstore.integrations._threads import thread_session_id
from agentstore.session import validate_session_id
from agentstore.store import Store
from agentstore.tracking import to_json_value

try:
    from langchain_core.callbacks import AsyncCallbackHandler
    from langchain_core.messages import BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, LLMResult
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "agentstore.integrations.langchain needs LangChain: pip install 'agentstore[langchain]'"
    ) from exc

__all__ = ["AgentStoreCallbackHandler", "thread_session_id"]


class AgentStoreCallbackHandler(AsyncCallbackHandler):
    """A LangChain async callback handler that appends every LLM and tool call to a store."""

    def __init__(
        self, store: Store, session_id: str | None = None, *, raise_error: bool = False
    ) -> None:
        """Record into `session_id`, or into one session per `thread_id` when it is None."""
        super().__init__()
        check_async_store(store)
        self.store = store
        """The store the runs are recorded in."""
        self.session_id = validate_session_id(session_id) if session_id is not None else None
        """The one session every run is recorded in, or None: one per thread."""
        self._raise_error = raise_error
        self._runs = RunTree()
        self._writer = SessionWriter(store)

    @property
    def raise_error(self) -> bool:
        """Whether LangChain re-raises a callback's exception instead of logging it.

        Always for `BudgetExceededError` (LangChain reads this while handling it): a
        budget exists to stop the run.
        """
        return self._raise_error or isinstance(sys.exc_info()[1], BudgetExceededError)

    @raise_error.setter
    def raise_error(self, value: bool) -> None:
        self._raise_error = value

    # --- sessions ------------------------------------------------------------------------

    async def _session(
        self, run_id: UUID, parent_run_id: UUID | None, metadata: Mapping[str, Any] | None
    ) -> str:
        if self.session_id is not None:
            sid, labels, name = self.session_id, {"framework": "langchain"}, "langchain"
            await self._writer.ensure(sid, name, labels)
            return sid
        parent = self._runs.get(parent_run_id)
        thread_id = (metadata or {}).get("thread_id")
        if thread_id is not None:
            sid = thread_session_id(thread_id)
            labels = {"framework": "langgraph", "thread_id": str(thread_id)}
            name = f"langgraph {thread_id}"
        elif parent is not None:
            return parent.session_id
        else:
            sid, labels, name = str(run_id), {"framework": "langchain"}, f"langchain run {run_id}"
        await self._writer.ensure(sid, name, labels)
        return sid

    # --- chains: the run tree and chain errors --------------------------------------------

    async def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the chain's session, for its children and its errors."""
        sid = await self._session(run_id, parent_run_id, metadata)
        root = self._runs.root(run_id, parent_run_id)
        self._runs.add(run_id, Run(sid, root=root, name=run_name(serialized, kwargs, "chain")))

    async def on_chain_end(
        self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """Forget the chain (and, at the root, the errors recorded under it)."""
        self._runs.forget(run_id)

    async def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the exception unless it was already recorded deeper in the run."""
        run = self._runs.get(run_id)
        try:
            if run is not None and not self._runs.seen(error, run) and not is_control_flow(error):
                event = error_event(error)
                event.payload["chain"] = run.name
                await self._writer.append(run.session_id, event)
        finally:
            self._runs.forget(run_id)

    # --- chat models ---------------------------------------------------------------------

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Append `llm_request` with the model, provider and messages."""
        sid = await self._session(run_id, parent_run_id, metadata)
        model, provider = model_of(serialized, metadata, kwargs)
        call_id = run_id.hex
        batch = messages[0] if len(messages) == 1 else [m for ms in messages for m in ms]
        sent = [message_json(m) for m in batch]
        await self._writer.append(sid, llm_request(model, sent, call_id=call_id, provider=provider))
        # Only a stored request is answered: a refused one (a budget) records no response.
        root = self._runs.root(run_id, parent_run_id)
        self._runs.add(run_id, Run(sid, root=root, call_id=call_id, model=model, provider=provider))

    async def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Append `llm_request` for a completion (non-chat) model, with its prompt."""
        sid = await self._session(run_id, parent_run_id, metadata)
        model, provider = model_of(serialized, metadata, kwargs)
        prompt = "\n\n".join(prompts)
        await self._writer.append(
            sid, llm_request(model, prompt=prompt, call_id=run_id.hex, provider=provider)
        )
        root = self._runs.root(run_id, parent_run_id)
        self._runs.add(
            run_id, Run(sid, root=root, call_id=run_id.hex, model=model, provider=provider)
        )

    async def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Append `llm_response` with the text, tool calls, tokens and duration."""
        run = self._runs.pop(run_id)
        if run is None or run.model is None:
            return
        generation = response.generations[0][0] if response.generations else None
        message = generation.message if isinstance(generation, ChatGeneration) else None
        usage = getattr(message, "usage_metadata", None) or {}
        meta = getattr(message, "response_metadata", None) or {}
        info = (generation.generation_info if generation is not None else None) or {}
        in_details = usage.get("input_token_details") or {}
        out_details = usage.get("output_token_details") or {}
        finish = meta.get("finish_reason") or meta.get("stop_reason") or info.get("finish_reason")
        model = meta.get("model_name") or meta.get("model") or run.model
        content = (
            message.text
            if message is not None
            else (generation.text if generation is not None else None)
        )
        event = llm_response(
            str(model),
            content,
            tokens_in=usage.get("input_tokens"),
            tokens_out=usage.get("output_tokens"),
            cache_read_tokens=in_details.get("cache_read"),
            cache_write_tokens=in_details.get("cache_creation"),
            reasoning_tokens=out_details.get("reasoning"),
            call_id=run.call_id,
            provider=run.provider,
            finish_reason=str(finish) if finish is not None else None,
            duration_ms=run.elapsed_ms(),
        )
        tool_calls = getattr(message, "tool_calls", None)
        if tool_calls:
            event.payload["tool_calls"] = [
                {"id": c.get("id"), "name": c.get("name"), "args": to_json_value(c.get("args"))}
                for c in tool_calls
            ]
        await self._writer.append(run.session_id, event)

    async def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Append an `error` linked to the `llm_request`."""
        await self._run_failed(error, run_id, parent_run_id, kind="llm")

    # --- tools ---------------------------------------------------------------------------

    async def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Append `tool_called` with the tool's name, arguments and the model's call id."""
        sid = await self._session(run_id, parent_run_id, metadata)
        name = run_name(serialized, kwargs, "tool")
        tool_call_id = kwargs.get("tool_call_id")
        call_id = str(tool_call_id) if tool_call_id else run_id.hex
        args = to_json_value(inputs) if isinstance(inputs, Mapping) else {"input": input_str}
        await self._writer.append(sid, tool_called(name, args, call_id=call_id))
        root = self._runs.root(run_id, parent_run_id)
        self._runs.add(run_id, Run(sid, root=root, name=name, call_id=call_id))

    async def on_tool_end(
        self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """Append `tool_result` with the output (a `ToolMessage`'s content and status)."""
        run = self._runs.pop(run_id)
        if run is None:
            return
        failed = None
        if isinstance(output, ToolMessage):
            if output.status == "error":
                failed = output.text
            output = output.content
        await self._writer.append(
            run.session_id,
            tool_result(
                run.name,
                result=to_json_value(output),
                error=failed,
                call_id=run.call_id,
                duration_ms=run.elapsed_ms(),
            ),
        )

    async def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Append an `error` linked to the `tool_called`."""
        await self._run_failed(error, run_id, parent_run_id, kind="tool")

    async def _run_failed(
        self, error: BaseException, run_id: UUID, parent_run_id: UUID | None, *, kind: str
    ) -> None:
        """Close an open model or tool run with an `error` event linked to its call."""
        run = self._runs.pop(run_id)
        if run is None:
            return
        self._runs.seen(error, run)
        self._runs.settle(run, run_id)
        if kind == "tool" and is_control_flow(error):
            # The graph paused inside the tool (`interrupt()`, e.g. for a human's approval):
            # no failure. LangGraph runs the tool again on resume, as a new call.
            paused = tool_result(run.name, call_id=run.call_id, duration_ms=run.elapsed_ms())
            paused.payload["interrupted"] = True
            await self._writer.append(run.session_id, paused)
            return
        named = {"model": run.model} if kind == "llm" else {"tool": run.name}
        await self._writer.append(run.session_id, error_event(error, call_id=run.call_id, **named))

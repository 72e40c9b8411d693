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
responses do not name it; input, output, cached and reasoning tokens from the usage;
`duration_ms`), `tool_called` / `tool_result` pairs linked by the SDK's `tool_call_id`,
and `agent_started`, `agent_finished` and `agent_handoff` events. Used as
`async with hooks:` around the run, it also records an exception that ends the run as an
`error` event that closes the calls it interrupted (without it, they stay in
`state.open_calls`).

`AgentStoreSession` is the SDK's `Session` protocol on the store: each item is an
`openai_agents_item` event. The runner removes items with `pop_item()` and
`clear_session()`; those append an `openai_agents_pop` / `openai_agents_clear` marker
that the item view honours, so the log stays append-only.

Needs `pip install 'agentstore[openai-agents]'`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agentstore.errors import (
    ConcurrencyError,
    InvalidInputError,
    SessionExistsError,
    SessionNotFoundError,
)
from agentstore.events import Event, new_event
from agentstore.helpers import error, llm_request, llm_response, new_call_id, tool_called
from agentstore.helpers import tool_result as tool_result_event
from agentstore.tracking import to_json_value

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

ITEM_TYPE = "openai_agents_item"
"""The event type of one conversation item (its payload is the item)."""
POP_TYPE = "openai_agents_pop"
"""The event type that removes one item: `{"item_seq": <sequence number of the item>}`."""
CLEAR_TYPE = "openai_agents_clear"
"""The event type that removes every item before it."""


async def _append(store: Store, session_id: str, event: Event) -> Event:
    """Append `event`, creating the session on first use."""
    try:
        return await store.append(session_id, event)
    except SessionNotFoundError:
        with contextlib.suppress(SessionExistsError):  # another writer made it meanwhile
            await store.create_session(session_id=session_id, labels={"framework": "openai-agents"})
        return await store.append(session_id, event)


def _model_name(agent_model: Any, fallback: str | None) -> tuple[str, str | None]:
    """Return (model name, provider) for an agent's `model` setting."""
    if isinstance(agent_model, str):
        # The SDK sends a bare name to OpenAI; "litellm/..." and the like go elsewhere.
        return agent_model, "openai" if "/" not in agent_model else None
    if agent_model is not None:
        name = getattr(agent_model, "model", None)
        module = type(agent_model).__module__
        provider = "openai" if module.startswith("agents.models.openai") else None
        if isinstance(name, str) and name:
            return name, provider
    if fallback is not None:
        return fallback, None
    if agent_model is None:
        from agents.models import get_default_model

        return get_default_model(), "openai"
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
            parsed = json.loads(raw)
        except ValueError:
            return {"arguments": raw}
        return parsed if isinstance(parsed, dict) else {"arguments": parsed}
    return {} if raw is None else {"arguments": to_json_value(raw)}


class _Pending:
    """A call whose end hook has not come yet."""

    __slots__ = ("call_id", "kind", "model", "name", "started")

    def __init__(self, kind: str, name: str, call_id: str, model: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.call_id = call_id
        self.model = model
        self.started = time.perf_counter()

    def duration_ms(self) -> int:
        return max(0, round((time.perf_counter() - self.started) * 1000))


class AgentStoreRunHooks(RunHooks[Any]):
    """`RunHooks` that record a run's LLM calls, tool calls and handoffs in a session.

    ```python
    hooks = AgentStoreRunHooks(store, session.id)
    result = await Runner.run(agent, "Book BER -> MUC", hooks=hooks)
    ```

    - `store`: an open `agentstore.Store`.
    - `session_id`: the session to record into (created on first use if it does not exist).
    - `model`: the model name to record when the agent has none of its own (a model set
      in `RunConfig`, which hooks cannot see); the SDK's default otherwise.
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
        self._pending: dict[tuple[object, ...], _Pending] = {}

    async def _record(self, event: Event) -> Event:
        return await _append(self.store, self.session_id, event)

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
        pending = _Pending("llm", agent.name, new_call_id(), model)
        messages = to_json_value(list(input_items)) if self._record_messages else None
        event = llm_request(
            model, messages, prompt=system_prompt, call_id=pending.call_id, provider=provider
        )
        # One LLM call at a time per agent in a run: the wrapper and the agent identify it.
        self._pending[(id(context), id(agent))] = pending
        await self._record(event)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        """Record `llm_response`: the text, tokens and duration, linked to its request."""
        pending = self._pending.pop((id(context), id(agent)), None)
        model, provider = _model_name(agent.model, self._model)
        usage = response.usage
        in_details = getattr(usage, "input_tokens_details", None)
        out_details = getattr(usage, "output_tokens_details", None)
        event = llm_response(
            pending.model if pending is not None and pending.model else model,
            _response_text(response.output),
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens,
            cache_read_tokens=getattr(in_details, "cached_tokens", None) or None,
            reasoning_tokens=getattr(out_details, "reasoning_tokens", None) or None,
            call_id=pending.call_id if pending is not None else None,
            provider=provider,
            duration_ms=pending.duration_ms() if pending is not None else None,
        )
        if response.response_id:
            event.metadata.extra = {
                **(event.metadata.extra or {}),
                "response_id": str(response.response_id),
            }
        await self._record(event)

    # Tool calls ---------------------------------------------------------------

    @staticmethod
    def _tool_key(context: Any, tool: Any) -> tuple[int, str, str]:
        return (id(context), str(getattr(context, "tool_call_id", "")), str(tool.name))

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        """Record `tool_called` with the arguments and the SDK's `tool_call_id`."""
        call_id = getattr(context, "tool_call_id", None) or new_call_id()
        pending = _Pending("tool", str(tool.name), str(call_id))
        self._pending[self._tool_key(context, tool)] = pending
        args = _tool_args(getattr(context, "tool_arguments", None))
        await self._record(tool_called(pending.name, args, call_id=pending.call_id))

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: object) -> None:
        """Record `tool_result`, linked to its call by the `tool_call_id`.

        A function tool that raised reaches this hook as the message the SDK gives the
        model instead (its `failure_error_function`), and is recorded as that result.
        """
        pending = self._pending.pop(self._tool_key(context, tool), None)
        event = tool_result_event(
            str(tool.name),
            result=to_json_value(result),
            call_id=pending.call_id if pending is not None else None,
            duration_ms=pending.duration_ms() if pending is not None else None,
        )
        await self._record(event)

    # Errors -------------------------------------------------------------------

    async def record_error(self, exc: BaseException) -> None:
        """Record `exc` as an `error` event closing every call of this run still open.

        With no call open (the run failed between calls), one `error` event is recorded.
        """
        pending = list(self._pending.values())
        self._pending.clear()
        if not pending:
            await self._record(error(exc))
            return
        for call in pending:
            if call.kind == "llm":
                event = error(exc, call_id=call.call_id, model=call.model)
            else:
                event = error(exc, call_id=call.call_id, tool=call.name)
            event.metadata.duration_ms = call.duration_ms()
            await self._record(event)

    async def __aenter__(self) -> AgentStoreRunHooks:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, GeneratorExit):
            await self.record_error(exc)


class AgentStoreSession:
    """The SDK's `Session` protocol on an agentstore session: the conversation's items.

    ```python
    session = AgentStoreSession(store, "support-42")
    await Runner.run(agent, "Hello", session=session)
    await Runner.run(agent, "And tomorrow?", session=session)  # resumes from the items
    ```

    Items are `openai_agents_item` events; `pop_item()` and `clear_session()` append
    markers that hide items, never rewrite the log. The agentstore session is created on
    first use. `get_items()` reads only the events appended since its last call.
    """

    session_settings: Any = None
    """The SDK's per-session settings (`SessionSettings`); None uses the run's."""

    def __init__(self, store: Store, session_id: str) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError("AgentStoreSession needs a session id (a non-empty string)")
        self.store = store
        """The store holding the items."""
        self.session_id = session_id
        """The agentstore session id (also the SDK's session id)."""
        self._items: list[tuple[int, Any]] = []  # (sequence number, item), in order
        self._seen = 0  # the last sequence number folded into _items

    async def _catch_up(self) -> None:
        """Fold the events appended since the last read into the item view."""
        try:
            events = await self.store.get_events(self.session_id, from_seq=self._seen + 1)
        except SessionNotFoundError:
            return
        for event in events:
            self._seen = event.sequence_number
            if event.type == ITEM_TYPE:
                self._items.append((event.sequence_number, event.payload))
            elif event.type == POP_TYPE:
                target = event.payload.get("item_seq") if isinstance(event.payload, dict) else None
                self._items = [(s, it) for s, it in self._items if s != target]
            elif event.type == CLEAR_TYPE:
                self._items = []

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """Return the items, oldest first (with `limit`: the latest `limit` of them)."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative integer, not {limit!r}")
        await self._catch_up()
        items = [item for _, item in self._items]
        if limit is not None:
            items = items[-limit:] if limit else []
        return items

    async def add_items(self, items: list[Any]) -> None:
        """Append the items, all or nothing, as `openai_agents_item` events."""
        if not items:
            return
        events = [new_event(ITEM_TYPE, _item_payload(item)) for item in items]
        try:
            await self.store.append_many(self.session_id, events)
        except SessionNotFoundError:
            with contextlib.suppress(SessionExistsError):  # another writer made it meanwhile
                await self.store.create_session(
                    session_id=self.session_id, labels={"framework": "openai-agents"}
                )
            await self.store.append_many(self.session_id, events)

    async def pop_item(self) -> Any | None:
        """Remove and return the latest item (None if there is none): appends a marker."""
        while True:
            await self._catch_up()
            if not self._items:
                return None
            seq, item = self._items[-1]
            marker = new_event(POP_TYPE, {"item_seq": seq})
            try:
                # Only if nothing was appended since we looked: else another writer may
                # have popped or added, and we look again.
                await self.store.append(self.session_id, marker, expected_seq=self._seen)
            except ConcurrencyError:
                continue
            return item

    async def clear_session(self) -> None:
        """Remove every item: appends an `openai_agents_clear` marker."""
        await self._catch_up()
        if self._seen == 0:
            return  # nothing stored (perhaps no session yet): nothing to clear
        await self.store.append(self.session_id, new_event(CLEAR_TYPE, {}))


def _item_payload(item: Any) -> Any:
    if isinstance(item, Mapping):
        return to_json_value(dict(item))
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return to_json_value(dump(exclude_unset=True))
    return to_json_value(item)

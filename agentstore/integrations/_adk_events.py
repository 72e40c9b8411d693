"""What one ADK event becomes in agentstore: the `adk_event` that holds it, then its meaning
in agentstore's own types (model turns, tool calls and results, errors, state changes).

Reads the ADK event through its attributes and methods, so this module imports no
framework at run time (`agentstore.integrations.adk` checks that ADK is installed).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agentstore.events import Event as StoreEvent
from agentstore.events import new_event
from agentstore.helpers import error as error_event
from agentstore.helpers import llm_response, state_updated, tool_called, tool_result
from agentstore.tracking import to_json_value

if TYPE_CHECKING:
    from google.adk.events.event import Event

__all__ = ["ADK_EVENT", "open_calls", "store_events", "token_counts"]

ADK_EVENT = "adk_event"
"""The event type that holds an ADK event as its JSON."""


def token_counts(usage: Any) -> tuple[int | None, int | None]:
    """(tokens in, tokens out) of a model turn, as ADK's own telemetry counts them.

    Gemini reports thinking apart from the answer (`thoughts_token_count` is not part of
    `candidates_token_count`), and the prompt of a tool use apart from the prompt;
    agentstore's `tokens_out` includes the reasoning tokens and `tokens_in` every input
    token, as the prices are made.
    """
    if usage is None:
        return None, None
    prompt, tool_prompt = usage.prompt_token_count, usage.tool_use_prompt_token_count
    answer, thoughts = usage.candidates_token_count, usage.thoughts_token_count
    tokens_in = (
        None if prompt is None and tool_prompt is None else (prompt or 0) + (tool_prompt or 0)
    )
    tokens_out = None if answer is None and thoughts is None else (answer or 0) + (thoughts or 0)
    return tokens_in, tokens_out


def open_calls(earlier: Sequence[Event], event: Event) -> list[tuple[str, str]]:
    """(call id, tool) of the function calls of `event`'s invocation still unanswered.

    A tool that raises ends ADK's run with an event of the invocation that holds only the
    error (`error_code`: the exception's class): the call it ended is one of these. A
    long-running tool's call (answered later, by a person say) is left open on purpose.
    """
    calls: dict[str, str] = {}
    for seen in earlier:
        if seen.invocation_id != event.invocation_id:
            continue
        waiting = seen.long_running_tool_ids or set()
        for call in seen.get_function_calls():
            if call.id and call.id not in waiting:
                calls[call.id] = call.name or "tool"
        for answer in seen.get_function_responses():
            calls.pop(answer.id or "", None)
    return list(calls.items())


def store_events(
    event: Event, own_delta: dict[str, Any], ended: Sequence[tuple[str, str]] = ()
) -> list[StoreEvent]:
    """The agentstore events one ADK event becomes: itself, then what it means.

    `ended`: the invocation's calls left open when `event` holds an error; a single one is
    the call the error ended (several, run at once: which one failed is not said, so the
    error is linked to none).
    """
    # ADK's JSON form (genai's bytes as base64, read back by `get_session`); what it cannot
    # write, such as a tool's result holding an object of the user's, the forgiving way.
    dumped = event.model_dump(mode="json", exclude_none=True, fallback=to_json_value)
    raw = new_event(ADK_EVENT, to_json_value(dumped))
    if event.id:
        raw.id = event.id
    out = [raw]
    meta = {"adk_event_id": event.id, "author": event.author}
    usage = event.usage_metadata
    calls = event.get_function_calls()
    answers = event.get_function_responses()
    # A model turn: usage, or content that is neither a call nor a function's answer (the
    # answer's event has the agent as author, but no model wrote it).
    if event.author != "user" and (
        usage is not None or (event.content and not calls and not answers)
    ):
        text = "".join(p.text or "" for p in (event.content.parts or [])) if event.content else ""
        model = event.model_version or event.author or "adk"
        tokens_in, tokens_out = token_counts(usage)
        response = llm_response(
            model,
            text or None,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cache_read_tokens=usage.cached_content_token_count if usage else None,
            reasoning_tokens=usage.thoughts_token_count if usage else None,
            finish_reason=event.finish_reason.value.lower() if event.finish_reason else None,
        )
        response.payload.update(meta)
        out.append(response)
    for call in calls:
        called = tool_called(call.name or "tool", to_json_value(call.args or {}), call_id=call.id)
        called.payload.update(meta)
        out.append(called)
    for answer in answers:
        result = tool_result(
            answer.name or "tool", result=to_json_value(answer.response), call_id=answer.id
        )
        result.payload.update(meta)
        out.append(result)
    if event.error_code:
        call_id, tool = ended[0] if len(ended) == 1 and not answers else (None, None)
        failed = error_event(
            event.error_message or event.error_code,
            code=event.error_code,
            call_id=call_id,
            tool=tool,
        )
        failed.payload.update(meta)
        out.append(failed)
    if own_delta:
        out.append(state_updated(**to_json_value(own_delta)))
    if event.id:
        # Ids derived from the ADK event id: appending the same event again (a retry)
        # writes none of them twice.
        for index, derived in enumerate(out[1:], start=1):
            derived.id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"adk-event:{event.id}/{index}"))
    return out

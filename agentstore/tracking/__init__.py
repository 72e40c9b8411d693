"""Tool-call and LLM-call tracking: one `with` block or one decorator per call.

```python
async with store.track_tool(session.id, "search_flights", {"to": "MUC"}) as call:
    call.result = await search_flights(to="MUC")

async with store.track_llm(session.id, "gpt-4o", messages) as llm:
    reply = await client.chat(messages)
    llm.respond(reply.text, tokens_in=reply.usage.input, tokens_out=reply.usage.output)

@store.tool(session.id)
async def search_flights(to: str) -> list[dict[str, str]]: ...
```

Entering a block appends the call (`tool_called` / `llm_request`, with a new `call_id`);
leaving it appends the result (`tool_result` / `llm_response`) with the same `call_id`
and the measured `duration_ms`. If the block raises, an `error` event (message,
exception class, traceback) with the same `call_id` is appended instead and the
exception propagates; if recording that error fails too, the failure is logged and the
original exception still propagates.

Results and decorator arguments are converted to JSON the forgiving way (pydantic
models, dataclasses, datetimes and sets become JSON; anything else its `repr`; NaN and
infinities `null`; bytes that are not UTF-8 their `repr`; integers beyond 64 bits strings;
a cycle or too deep a nesting a marker string; an iterator its `repr`, undrained), so
recording never fails after the tool itself succeeded.
"""

from __future__ import annotations

from agentstore.tracking.calls import LlmCall, ToolCall, TrackedCall, to_json_value
from agentstore.tracking.decorator import tool, tool_decorator
from agentstore.tracking.trackers import (
    AsyncTracker,
    SyncTracker,
    track_llm,
    track_llm_sync,
    track_tool,
    track_tool_sync,
)

__all__ = [
    "AsyncTracker",
    "LlmCall",
    "SyncTracker",
    "ToolCall",
    "TrackedCall",
    "to_json_value",
    "tool",
    "tool_decorator",
    "track_llm",
    "track_llm_sync",
    "track_tool",
    "track_tool_sync",
]

"""The OpenTelemetry names agentstore writes, pinned to one version of the conventions.

Every attribute name, operation name and span-name prefix the exporter uses is a string
constant here, taken from the GenAI semantic conventions of `SEMCONV_VERSION` (plus
`error.type` from the general ones), so a change of the conventions is a change of this
one file. Names of our own start with `agentstore.`.

This module imports nothing from OpenTelemetry: it is plain data.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AGENTSTORE_COST_USD",
    "AGENTSTORE_EVENT_TYPE",
    "AGENTSTORE_OPEN_CALL",
    "AGENTSTORE_SEQUENCE_NUMBER",
    "ERROR_TYPE",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_INPUT_MESSAGES",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_SYSTEM_INSTRUCTIONS",
    "GEN_AI_TOOL_CALL_ARGUMENTS",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_CALL_RESULT",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "OP_CHAT",
    "OP_EXECUTE_TOOL",
    "OP_INVOKE_AGENT",
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "TRACER_NAME",
]

SEMCONV_VERSION: Final = "1.43.0"
"""The version of the OpenTelemetry semantic conventions these names come from."""
SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
"""The schema URL given to the tracer, so a backend knows which names to expect."""
TRACER_NAME: Final = "agentstore"
"""The instrumentation scope of every span."""

# gen_ai.operation.name values; a span is named "<operation> <model or tool or agent>".
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_EXECUTE_TOOL: Final = "execute_tool"

GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
ERROR_TYPE: Final = "error.type"

# Content: only written when asked for (include_content=True), as JSON strings.
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"

# Ours.
AGENTSTORE_SEQUENCE_NUMBER: Final = "agentstore.sequence_number"
"""The sequence number of the call event a span was made from."""
AGENTSTORE_COST_USD: Final = "agentstore.cost_usd"
"""The recorded cost of an LLM call, in US dollars."""
AGENTSTORE_OPEN_CALL: Final = "agentstore.open_call"
"""True on a span whose call has no result recorded (it ends at the last event)."""
AGENTSTORE_EVENT_TYPE: Final = "agentstore.event_type"
"""On span events made from agentstore events: the event's type."""

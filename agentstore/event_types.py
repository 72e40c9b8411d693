"""Event type names: the built-in `EventType`s, and the check that any other name is valid."""

from __future__ import annotations

import re
from enum import StrEnum

from agentstore.errors import InvalidEventError

__all__ = ["KNOWN_TYPES", "TYPE_NAME", "EventType", "check_event_type"]


class EventType(StrEnum):
    """The built-in, agent-native event types.

    Any other lower-case identifier (`"cache_hit"`) is a valid user-defined type.
    """

    USER_MESSAGE = "user_message"
    PLAN_CREATED = "plan_created"
    TOOL_CALLED = "tool_called"
    TOOL_RESULT = "tool_result"
    LLM_REQUEST = "llm_request"
    LLM_RESPONSE = "llm_response"
    STATE_UPDATED = "state_updated"
    ERROR = "error"
    CUSTOM = "custom"


TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
"""What a user-defined type name looks like."""
# Validated type names, so the append path pays for the regex once per name.
KNOWN_TYPES: dict[str, str] = {t.value: t for t in EventType}
"""Type names already checked, each to the value events hold (the `EventType` if built in)."""


def check_event_type(value: object) -> str:
    """Return `value` as an event type name, or raise `InvalidEventError`."""
    if isinstance(value, str):
        known = KNOWN_TYPES.get(value)
        if known is not None:
            return known
        if TYPE_NAME.fullmatch(value):
            if len(KNOWN_TYPES) < 10_000:
                KNOWN_TYPES[value] = value
            return value
    raise InvalidEventError(
        f"invalid event type {value!r}: use an EventType or a lower-case identifier "
        "such as 'cache_hit' (a-z, 0-9, _; at most 64 characters, starting with a letter)"
    )

"""What the jsonb view would refuse in an event's JSON text, refused before anything is written.

The events table keeps the exact JSON text of every event; the view `events_jsonb` parses
it as jsonb when a query reads it (schema step 5). jsonb cannot hold the NUL character
(`\\u0000`) in a string or a key, so a row holding one would fail every query through the
view that reads it. Such an event is refused with `InvalidEventError`, as it was when the
jsonb was stored and the server refused the statement; now before the statement is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from agentstore.backends.base import PendingEvent
from agentstore.errors import InvalidEventError, InvalidInputError

__all__ = ["refuse_nul", "refuse_nul_in_session"]

# How JSON text spells NUL (orjson writes it so). The text can also hold it after an
# escaped backslash (`"\\u0000"`, six characters of a string, no NUL): a hit is checked
# against the parsed value, which only texts holding those six characters pay.
_NUL = b"\\u0000"


def _holds_nul(value: Any) -> bool:
    """Whether a string or key anywhere in `value` holds NUL (iterative: nesting is the
    JSON parser's limit, deeper than Python's recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def refuse_nul(batch: Sequence[PendingEvent], what: str, session_id: str | None = None) -> None:
    """Raise `InvalidEventError` if an event's payload or metadata holds NUL in a string.

    `what` names the operation in the message; with `session_id`, `what` is followed by
    the session's id (`"appending to session", sid`): the message is made only for the
    error, not on every append."""
    # One search over the batch's texts joined (a loop of two searches an event cost 0.7 us
    # an event, a tenth of the client's time on an append_many of 100); the events are
    # looked at one by one only when it finds the six characters.
    # `find`, not `in`: `bytes in bytes` first tries the right side as an integer (a byte
    # value), and the TypeError it raises and clears (its message formatted) cost ~1,800
    # instructions a search, 1.3% of a lone append's client instructions.
    if len(batch) == 1:  # a lone append: two searches, no list to join
        one = batch[0]
        if one.payload_json.find(_NUL) < 0 and one.metadata_json.find(_NUL) < 0:
            return
    else:
        texts = [e.payload_json for e in batch] + [e.metadata_json for e in batch]
        if b"".join(texts).find(_NUL) < 0:
            return
    for event in batch:
        for part, text in (("payload", event.payload_json), ("metadata", event.metadata_json)):
            if _NUL in text and _holds_nul(orjson.loads(text)):
                if session_id is not None:
                    what = f"{what} {session_id!r}"
                raise InvalidEventError(
                    f"{what}: event {event.id!r}: PostgreSQL cannot store this JSON value: "
                    f"its {part} holds the NUL character (\\u0000), which jsonb refuses"
                )


def refuse_nul_in_session(
    session_id: str, labels: Any = None, extra: Any = None, what: str = "creating"
) -> None:
    """Raise `InvalidInputError` if a session's labels or extra fields (jsonb columns) hold
    NUL in a string: named, before the server refuses the statement with "unsupported
    Unicode escape sequence"."""
    for part, value in (("labels", labels), ("extra fields", extra)):
        if value and _holds_nul(value):
            raise InvalidInputError(
                f"{what} session {session_id!r}: PostgreSQL cannot store the NUL character "
                f"(\\u0000) in its {part}"
            )

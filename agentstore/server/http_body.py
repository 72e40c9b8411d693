"""Decoding a request body of the HTTP door: JSON that every later step can store and read.

orjson reads what it is given, but three kinds of valid JSON would still hurt later on:

- Nesting. orjson reads 1,024 levels but writes only 254: a payload nested 253 deep was
  stored, and then the event inside its line (one level more) or the state holding it
  (two more) could not be written as JSON: every read of the session failed with a 500,
  or was cut off mid-body, for good. A body nested deeper than `MAX_DEPTH` is refused.
- Duplicate keys. orjson keeps the last value of a key given twice, other parsers the
  first: `{"expected_seq": 0, "expected_seq": null}` was an unconditional append to the
  server while a proxy or a log reader saw a conditional one, and a payload was stored
  other than what its sender's own tools showed. RFC 8259 leaves the meaning open, so
  such a body is refused, naming the key.
- Integers beyond 64 bits, which orjson turns into floats (`inputs.loads_exact`, as the gRPC
  door decodes too).
"""

from __future__ import annotations

from typing import Any

import orjson

from agentstore import InvalidInputError
from agentstore.eventjson import dumps_within
from agentstore.server.inputs import loads_exact, refuse_duplicate_keys

__all__ = ["MAX_DEPTH", "decode_json_body"]

MAX_DEPTH = 250
"""Most levels of arrays and objects in a request body (an event's payload sits one to three
levels down: the state keeps it two levels deeper again, within what orjson writes)."""


def decode_json_body(raw: bytes) -> Any:
    """Return the JSON value of a request body, or raise `InvalidInputError` saying why."""
    data = loads_exact(raw, "the request body")
    opened = raw.count(b"[") + raw.count(b"{")  # brackets in strings too: an upper bound
    if opened <= MAX_DEPTH and raw.find(b":") < 0:
        return data  # neither too deep nor any object key: nothing more to look at
    try:
        written = dumps_within(data, MAX_DEPTH)  # orjson's own limit, at MAX_DEPTH levels
    except orjson.JSONEncodeError:
        raise InvalidInputError(
            f"the request body is nested more than {MAX_DEPTH} levels deep"
        ) from None
    refuse_duplicate_keys(raw, written, "the request body")
    return data

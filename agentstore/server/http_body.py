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
- Integers beyond 64 bits, which orjson turns into floats (`inputs.integer_beyond_64_bits`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from agentstore import InvalidInputError
from agentstore.server.inputs import integer_beyond_64_bits

__all__ = ["MAX_DEPTH", "decode_json_body"]

MAX_DEPTH = 250
"""Most levels of arrays and objects in a request body (an event's payload sits one to three
levels down: the state keeps it two levels deeper again, within what orjson writes)."""

_ORJSON_WRITE_DEPTH = 254
"""The deepest nesting `orjson.dumps` writes (it raises "Recursion limit reached" past it)."""
_WRAPS = _ORJSON_WRITE_DEPTH - MAX_DEPTH
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # each digit "0", else " "
_LONG_RUN = b"0" * 19  # the shortest integer that may not fit in 64 bits


def decode_json_body(raw: bytes) -> Any:
    """Return the JSON value of a request body, or raise `InvalidInputError` saying why."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"the request body is not valid JSON: {exc}") from None
    # The shared check starts with a regex search for 19 digits in a row, as slow as the
    # parse itself on a large body (27 ms a megabyte): two C passes tell it first.
    too_big = integer_beyond_64_bits(raw) if _LONG_RUN in raw.translate(_DIGITS) else None
    if too_big is not None:
        raise InvalidInputError(
            f"the integer {too_big[:30].decode()} does not fit in 64 bits; send it as a string"
        )
    opened = raw.count(b"[") + raw.count(b"{")  # brackets in strings too: an upper bound
    if opened <= MAX_DEPTH and b":" not in raw:
        return data  # neither too deep nor any object key: nothing more to look at
    try:
        # Wrapped so that orjson's own limit stops at MAX_DEPTH levels of the body.
        written = orjson.dumps(_wrapped(data))
    except orjson.JSONEncodeError:
        raise InvalidInputError(
            f"the request body is nested more than {MAX_DEPTH} levels deep"
        ) from None
    # Every key of an object is followed by one colon; the rest are inside strings. orjson
    # keeps one key of a duplicate and writes the strings it read, so the body read back
    # has fewer colons than the body sent exactly when a key was given twice; unless a
    # string spelt a colon as \u003a (one more colon read back), when the slow look decides.
    if written.count(b":") != raw.count(b":") or _ESCAPED_COLON.search(raw):
        _refuse_duplicate_keys(raw)
    return data


def _wrapped(data: Any) -> Any:
    for _ in range(_WRAPS):
        data = [data]
    return data


def _refuse_duplicate_keys(raw: bytes) -> None:
    """Raise `InvalidInputError` naming the first key an object of `raw` gives twice."""

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInputError(
                    f"the request body gives the key {key[:100]!r} twice in one object; "
                    "send each key once"
                )
            seen.add(key)
        return dict(pairs)

    # The body is valid JSON within MAX_DEPTH levels here, so this parse cannot fail else.
    json.loads(raw, object_pairs_hook=pairs_hook)

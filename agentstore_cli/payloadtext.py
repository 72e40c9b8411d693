"""One-line text of event payloads: the parts of a timeline row's summary.

Payloads are decoded JSON of any shape; these helpers find the part worth showing (a
message's text, a call's arguments, a result's size) and return it cleaned of control
characters (`sanitize.clean`), as plain strings that both the styled and the plain rows use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from agentstore import Event
from agentstore_cli.sanitize import clean

__all__ = [
    "call_args",
    "first_of",
    "json_preview",
    "model_name",
    "preview",
    "result_shape",
    "text_of",
    "tool_name",
]

_PREVIEW_CHARS = 400  # longer than any terminal line: the console cuts the rest


def preview(value: Any, limit: int = _PREVIEW_CHARS) -> str:
    """Return a one-line, cleaned preview of a JSON value (strings without quotes)."""
    if isinstance(value, str):
        text = value[: limit * 2]
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return clean(text)


def json_preview(value: Any, limit: int) -> str:
    """Like `preview`, but strings keep their quotes (for arguments: `to="MUC"`)."""
    # `preview` of the JSON text, in one call: each argument of every tool call comes here.
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        if isinstance(value, str):
            raise  # a lone surrogate, which no decoded log holds
        text = repr(value)
    return clean(text if len(text) <= limit else text[: limit - 1] + "…")


def _is_map(value: Any) -> bool:
    # `type() is dict` first: payloads are decoded JSON, and the ABC check costs more.
    return type(value) is dict or isinstance(value, Mapping)


def first_of(payload: Any, *keys: str) -> Any:
    """Return the value of the first of `keys` the payload has (not null or empty)."""
    if type(payload) is dict or isinstance(payload, Mapping):
        for key in keys:
            value = payload.get(key)
            if value is not None and value != "":
                return value
    return None


def text_of(payload: Any, *keys: str) -> str:
    """The payload's main text: itself if a string, else the first key present."""
    if type(payload) is dict:  # the usual case, a text under the first key present
        for key in keys:
            found = payload.get(key)
            if found is not None and found != "":
                if type(found) is str:
                    return clean(
                        found if len(found) <= _PREVIEW_CHARS else found[: _PREVIEW_CHARS - 1] + "…"
                    )
                break
    if isinstance(payload, str):
        return preview(payload)
    found = first_of(payload, *keys)
    if found is None:
        return preview(payload) if payload is not None else ""
    if isinstance(found, list) and found and _is_map(found[-1]):
        # chat messages: show the last one's content
        inner = first_of(found[-1], "content", "text")
        return preview(inner if inner is not None else found[-1])
    return preview(found)


def tool_name(event: Event) -> str | None:
    """Return the tool an event names, from its metadata or its payload."""
    name = event.metadata.tool_name or first_of(event.payload, "tool", "tool_name", "name")
    return str(name) if name is not None else None


def model_name(event: Event) -> str | None:
    """Return the model an event names, from its metadata or its payload."""
    name = event.metadata.model or first_of(event.payload, "model")
    return str(name) if name is not None else None


def call_args(payload: Any) -> str:
    """Return a tool call's arguments as one line: `to="MUC", n=2`."""
    args = first_of(payload, "args", "arguments", "input", "parameters", "params")
    if args is None and _is_map(payload):
        args = {k: v for k, v in payload.items() if k not in ("tool", "tool_name", "name")}
    if _is_map(args):
        return ", ".join([f"{clean(str(k))}={json_preview(v, 80)}" for k, v in args.items()])
    if args is None:
        return ""
    return preview(args, 160)


def result_shape(payload: Any) -> str | None:
    """Describe a result's size in items: '2 flights', '5 items'."""
    result = first_of(payload, "result", "results", "output", "data")
    if result is None:
        result = payload
    if isinstance(result, list):
        return f"{len(result)} item{'s' if len(result) != 1 else ''}"
    if _is_map(result):
        lists = [(k, v) for k, v in result.items() if isinstance(v, list)]
        if len(lists) == 1:
            key, items = lists[0]
            return f"{len(items)} {clean(str(key))}"
    return None

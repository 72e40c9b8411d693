"""`Metadata`: the optional observability fields of an event, and fast ways to build them.

Building a `Metadata` through pydantic validation costs several microseconds; the
helpers here build them from values already known to be valid (an empty one, a copy, a
decoded log line whose values have the expected JSON types), which the hot paths use.
Events read without metadata build none: they share `SHARED_EMPTY` until it is read
(`OwnMetadata`); `SlotDefault` spares read-only events their other pydantic slots.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Mapping
from typing import Annotated, Any, Self, SupportsIndex

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from agentstore.checked_model import CheckedModel
from agentstore.errors import InvalidEventError

__all__ = [
    "NO_METADATA",
    "SHARED_EMPTY",
    "Metadata",
    "copy_metadata",
    "decode_metadata",
    "empty_metadata",
    "metadata_from_parts",
    "metadata_parts",
]


def number_only(value: Any) -> Any:
    """Refuse what pydantic's lax mode would turn into a number: `True` would count as one
    token or one dollar, `"5"` is a caller's bug (an integral float such as `5.0` is kept:
    token counts are often computed)."""
    if isinstance(value, bool | str | bytes | bytearray):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    return value


_Count = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(number_only)]
_Dollars = Annotated[
    Annotated[float, Field(ge=0, allow_inf_nan=False)] | None, BeforeValidator(number_only)
]


class Metadata(CheckedModel):
    """Optional observability data attached to an event. Every field may be left unset.

    Counts and `cost_usd` must be numbers (not booleans or strings), at least zero.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    worker_id: str | None = None
    """Which worker or process produced the event."""
    tokens_in: _Count = None
    """Input (prompt) tokens of an LLM call."""
    tokens_out: _Count = None
    """Output (completion) tokens of an LLM call."""
    model: str | None = None
    """Model name, e.g. `"gpt-4o"`."""
    tool_name: str | None = None
    """Tool name for `tool_called` / `tool_result`."""
    duration_ms: _Count = None
    """How long the operation took, in milliseconds."""
    cost_usd: _Dollars = None
    """Cost of the call in US dollars."""
    call_id: str | None = None
    """Pairs a call (`tool_called`, `llm_request`) with its result."""
    cache_read_tokens: _Count = None
    """Input tokens served from the provider's prompt cache."""
    cache_write_tokens: _Count = None
    """Input tokens written to the provider's prompt cache."""
    reasoning_tokens: _Count = None
    """Output tokens spent on reasoning."""
    provider: str | None = None
    """Model provider, e.g. `"openai"`."""
    extra: dict[str, str] | None = None
    """Free-form string key/value pairs."""

    invalid_error = InvalidEventError
    invalid_what = "metadata"

    def __setattr__(self, name: str, value: Any) -> None:
        if self is SHARED_EMPTY:  # never handed to users (see `SHARED_EMPTY`): a bug here
            raise InvalidEventError("the shared empty Metadata of stored events is read-only")
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if self is SHARED_EMPTY:
            raise InvalidEventError("the shared empty Metadata of stored events is read-only")
        super().__delattr__(name)

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        if self is SHARED_EMPTY:
            # Unpickled read events share it again (and each makes its own when read): a
            # pickle of many events would otherwise give them one ordinary copy to share.
            return (_shared_empty, ())
        return super().__reduce_ex__(protocol)

    @classmethod
    # pydantic's mypy plugin gives the subclass a signature with the fields as keywords.
    def model_construct(  # type: ignore[override]
        cls, _fields_set: set[str] | None = None, **values: Any
    ) -> Self:
        """Build a `Metadata`, checked as `Metadata(...)` is.

        pydantic's `model_construct` skips validation: a value it let through was written
        as it was, and the line could not be read back (`CorruptLogError` on every replay
        of its session).
        """
        return cls(**values)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Return a copy, with the fields in `update` checked as an assignment is (pydantic's
        copy does not check them; see `model_construct`)."""
        copied = super().model_copy(deep=deep)
        for name, value in (update or {}).items():
            setattr(copied, name, value)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Metadata:
        if self is SHARED_EMPTY:
            return self  # as with pickling: copies of read events keep sharing it
        return super().__deepcopy__(memo)

    def to_dict(self) -> dict[str, Any]:
        """Return the set fields as a JSON-ready dict (unset fields are left out)."""
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        if self.__pydantic_extra__:
            out.update(self.__pydantic_extra__)
        if "extra" in out:
            out["extra"] = dict(out["extra"])
        return out


_UNSET_METADATA: dict[str, Any] = dict.fromkeys(Metadata.model_fields)
NO_METADATA = tuple(_UNSET_METADATA.values())
"""The values of an empty `Metadata`, in field order (a fast emptiness test)."""


_new_metadata = Metadata.__new__
# The setters of a pydantic model's four slots, called directly: a third cheaper than
# `object.__setattr__` (no lookup of the name), on the path of every event built.
_SLOT_SETTERS = tuple(
    BaseModel.__dict__[name].__set__
    for name in (
        "__dict__",
        "__pydantic_fields_set__",
        "__pydantic_extra__",
        "__pydantic_private__",
    )
)
_set_dict, _set_fields, _set_extra, _set_private = _SLOT_SETTERS


def _assemble(fields: dict[str, Any], names: set[str], unknown: dict[str, Any]) -> Metadata:
    """A `Metadata` from parts already valid (its own, shared with nothing): no validation."""
    meta = _new_metadata(Metadata)
    _set_dict(meta, fields)
    _set_fields(meta, names)
    _set_extra(meta, unknown)
    _set_private(meta, None)
    return meta


def empty_metadata() -> Metadata:
    """Return a new, empty `Metadata` without running validation (hot path)."""
    return _assemble(_UNSET_METADATA.copy(), set(), {})


SHARED_EMPTY = empty_metadata()
"""One empty `Metadata` that events decoded without metadata share, until it is read.

Building an empty `Metadata` for each of them (and walking it and its fields-set in every
collection) was a sixth of a replay. A `StoredEvent` keeps this object in its field dict
and hands out its own copy the first time `event.metadata` is read (`events.py`), so no
user ever holds it: it serialises, compares and copies like any empty `Metadata`, and
setting a field on it raises (a bug, if it ever happens) rather than changing every event.
"""


def _shared_empty() -> Metadata:
    return SHARED_EMPTY


# Two threads reading one event's metadata for the first time must get the same object.
_first_read = threading.Lock()


class OwnMetadata:
    """`StoredEvent.metadata`: the event's own `Metadata`, made the first time it is read.

    A decoded event without metadata holds `SHARED_EMPTY` in its field dict (it
    serialises, compares and copies as an empty `Metadata`); reading the field replaces
    it with a new empty one, so what a user gets is this event's alone, as before.
    """

    def __get__(self, event: BaseModel | None, owner: type | None = None) -> Metadata:
        if event is None:
            raise AttributeError("metadata")  # a field, not a class attribute (as before)
        fields = event.__dict__
        meta: Metadata = fields["metadata"]
        if meta is SHARED_EMPTY:
            with _first_read:
                meta = fields["metadata"]
                if meta is SHARED_EMPTY:
                    meta = fields["metadata"] = empty_metadata()
        return meta

    def __set__(self, event: BaseModel, value: Metadata) -> None:
        event.__setattr__("metadata", value)  # StoredEvent refuses it


class SlotDefault:
    """One of `BaseModel`'s slots, reading as `default` until it is set.

    For a class whose instances almost all hold the same value there (a `StoredEvent`:
    the shared fields-set, no extra, no private values): they are built without setting
    it, and whatever pydantic sets (a copy's own fields-set) is read back as usual.
    """

    def __init__(self, name: str, default: Any) -> None:
        slot = BaseModel.__dict__[name]
        self._get, self._set, self._delete = slot.__get__, slot.__set__, slot.__delete__
        self._default = default

    def __get__(self, obj: BaseModel | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            return self._get(obj, owner)
        except AttributeError:
            return self._default

    def __set__(self, obj: BaseModel, value: Any) -> None:
        self._set(obj, value)

    def __delete__(self, obj: BaseModel) -> None:
        self._delete(obj)


_META_INTS = frozenset(
    (
        "tokens_in",
        "tokens_out",
        "duration_ms",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    )
)
_META_STRS = frozenset(("worker_id", "model", "tool_name", "call_id", "provider"))


def decode_metadata(raw: dict[str, Any]) -> Metadata:
    """Build `Metadata` from a decoded log line's `metadata` object.

    Values of the expected JSON types (what agentstore and the Go original write) are
    taken as they are, about 5x faster than pydantic validation; anything else (a
    negative count, a string where a number belongs, an unknown key) goes through full
    validation, which keeps unknown keys and raises on bad values.
    """
    fields = _UNSET_METADATA.copy()
    for key, value in raw.items():
        kind = type(value)
        if key in _META_INTS:
            if kind is not int or value < 0:
                return Metadata.model_validate(raw)
        elif key in _META_STRS:
            if kind is not str:
                return Metadata.model_validate(raw)
        elif key == "cost_usd":
            if (kind is not float and kind is not int) or not 0 <= value < math.inf:
                return Metadata.model_validate(raw)
            value = float(value)
        elif key == "extra":
            if kind is not dict or not all(
                type(k) is str and type(v) is str for k, v in value.items()
            ):
                return Metadata.model_validate(raw)
        else:
            return Metadata.model_validate(raw)
        fields[key] = value
    return _assemble(fields, set(raw), {})


def copy_metadata(meta: Metadata) -> Metadata:
    """Return a deep copy of `meta` (its values are scalars, or `extra`'s strings)."""
    fields = meta.__dict__.copy()
    if fields.get("extra") is not None:
        fields["extra"] = dict(fields["extra"])
    extra = meta.__pydantic_extra__
    return _assemble(
        fields, set(meta.__pydantic_fields_set__), copy.deepcopy(extra) if extra else {}
    )


MetadataParts = dict[str, Any]
"""A `Metadata` taken apart into one dict: see `metadata_parts`."""

# Where the parts keep the names set and the unknown keys: no field name has a space.
_NAMES = " names"
_UNKNOWN = " unknown"


def metadata_parts(meta: Metadata) -> MetadataParts:
    """Take a private copy of `meta` apart into one dict, for a store to keep many of.

    A `Metadata` is two objects (the model and its set of names) that the cyclic collector
    walks in every full collection, which pauses every thread in proportion to the heap.
    A dict of scalars, strings and tuples of strings (the names; `extra`'s items) is one
    that the collector stops tracking in its next full collections: a dict or a tuple
    that holds a dict never is.
    """
    parts = meta.__dict__.copy()
    if parts.get("extra") is not None:
        parts["extra"] = tuple(parts["extra"].items())  # a dict inside keeps it tracked
    parts[_NAMES] = tuple(meta.__pydantic_fields_set__)
    unknown = meta.__pydantic_extra__
    if unknown:
        parts[_UNKNOWN] = copy.deepcopy(unknown)
    return parts


def metadata_from_parts(parts: MetadataParts) -> Metadata:
    """Build a new `Metadata` (nothing shared with `parts`) from `metadata_parts`' result."""
    fields = parts.copy()
    names = fields.pop(_NAMES)
    unknown = fields.pop(_UNKNOWN, None)
    if fields["extra"] is not None:
        fields["extra"] = dict(fields["extra"])
    return _assemble(fields, set(names), copy.deepcopy(unknown) if unknown else {})

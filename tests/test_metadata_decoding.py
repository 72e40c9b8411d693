"""The fast metadata decoder agrees with pydantic validation on everything it accepts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agentstore.events import Metadata, decode_metadata

CASES: list[dict[str, Any]] = [
    {"tool_name": "calc"},
    {"tokens_in": 850, "model": "gpt-4"},
    {"tokens_in": 100, "tokens_out": 10, "model": "m", "cost_usd": 0.001},
    {"cost_usd": 1},  # an int cost becomes a float
    {"extra": {"k": "v"}, "worker_id": "w1", "call_id": "c", "provider": "openai"},
    {"cache_read_tokens": 5, "cache_write_tokens": 0, "reasoning_tokens": 7, "duration_ms": 1},
    {"tokens_in": True},  # bool: validated the slow way (and refused: not a number)
    {"future_field": "kept"},  # unknown key: kept in the extras
    {"extra": {"k": 1}},  # not a string: validated (and refused)
    {"tokens_in": -1},  # refused
    {"model": 5},  # refused
    {"cost_usd": "0.1"},  # a numeric string: refused as the API refuses it
]


def _same(raw: dict[str, Any]) -> None:
    try:
        expected = Metadata.model_validate(raw)
    except ValidationError:
        with pytest.raises(ValidationError):
            decode_metadata(raw)
        return
    got = decode_metadata(raw)
    assert got.to_dict() == expected.to_dict()
    assert got.model_dump() == expected.model_dump()
    assert got.model_fields_set == expected.model_fields_set
    assert type(got.cost_usd) is type(expected.cost_usd)


@pytest.mark.parametrize("raw", CASES)
def test_cases(raw: dict[str, Any]) -> None:
    _same(raw)


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers()), max_size=2),
)
keys = st.sampled_from([*Metadata.model_fields, "other"])


@given(st.dictionaries(keys, values, max_size=5))
def test_any_json_object(raw: dict[str, Any]) -> None:
    _same(raw)

"""NaN and Infinity are refused wherever orjson would have written them as `null`."""

from __future__ import annotations

import dataclasses
import enum
import math

import pytest

import agentstore
from agentstore import InvalidEventError, Metadata, new_event


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Nested:
    inner: list[Point]


class Level(float, enum.Enum):
    BAD = math.nan


class Fine(enum.Enum):
    A = 1.5


@pytest.mark.parametrize(
    "payload",
    [
        Point(1.0, math.nan),
        {"p": Point(math.inf, 0.0)},
        Nested([Point(0.0, 1.0), Point(-math.inf, 2.0)]),
        [Level.BAD],
        {"deep": [{"deeper": (1.0, math.nan)}]},
    ],
    ids=["dataclass", "dataclass-in-dict", "nested-dataclass", "enum", "tuple"],
)
async def test_non_finite_payloads_are_refused_and_nothing_is_written(payload: object) -> None:
    async with agentstore.open(in_memory=True) as store:
        session = await store.create_session()
        with pytest.raises(InvalidEventError, match="NaN or Infinity"):
            await store.append(session.id, new_event("custom", payload))
        assert await store.get_events(session.id) == []


async def test_non_finite_in_a_metadata_extra_field_is_refused() -> None:
    async with agentstore.open(in_memory=True) as store:
        session = await store.create_session()
        meta = Metadata(score=math.nan)  # an extra field: Metadata allows them
        with pytest.raises(InvalidEventError, match="NaN or Infinity"):
            await store.append(session.id, new_event("custom", {}, meta))
        meta = Metadata(point=Point(0.0, math.inf))
        with pytest.raises(InvalidEventError, match="NaN or Infinity"):
            await store.append(session.id, new_event("custom", {}, meta))
        assert await store.get_events(session.id) == []


async def test_finite_values_and_real_nulls_still_store() -> None:
    async with agentstore.open(in_memory=True) as store:
        session = await store.create_session()
        stored = await store.append(
            session.id, new_event("custom", {"p": Point(1.0, 2.0), "e": Fine.A, "none": None})
        )
        assert stored.payload == {"p": Point(1.0, 2.0), "e": Fine.A, "none": None}
        [read] = await store.get_events(session.id)
        assert read.payload == {"p": {"x": 1.0, "y": 2.0}, "e": 1.5, "none": None}

"""`timestamptz` on our connections: every time exactly, aware UTC, both ways.

asyncpg writes the first and last instants Python has (0001-01-01T00:00:00Z, a Go agent's
unset `time.Time`, and 9999-12-31T23:59:59.999999Z) as PostgreSQL's `-infinity` and
`infinity`, and reads those back as *naive* datetimes: a session created at Go's zero time
came back naive, and comparing it with the others failed every listing of the store. This
codec writes every instant as the number it is (PostgreSQL's own binary form: microseconds
since 2000-01-01 UTC) and reads every value back aware, `±infinity` (rows written before
it) as the first or last instant Python has.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["use_exact_times"]

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_INFINITY = 2**63 - 1
_MINUS_INFINITY = -(2**63)
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def _encode(value: datetime) -> tuple[int]:
    if value.tzinfo is None:  # a naive time is UTC (as everywhere in agentstore)
        value = value.replace(tzinfo=UTC)
    return ((value - _EPOCH) // _MICRO,)


def _decode(value: tuple[int]) -> datetime:
    micros = value[0]
    if micros == _INFINITY:
        return _LAST
    if micros == _MINUS_INFINITY:
        return _FIRST
    try:
        # `_MICRO * micros` rather than `timedelta(microseconds=micros)`: the same value
        # (integer arithmetic) without parsing a keyword argument into a float-checked
        # accumulation: 3.7k instructions a value instead of 6.7k (callgrind), paid for
        # every timestamp read (two on every append, one for every event replayed).
        return _EPOCH + _MICRO * micros
    except OverflowError:  # a year past 9999 (PostgreSQL's go to 294276), written by others
        return _LAST if micros > 0 else _FIRST


async def use_exact_times(conn: Any) -> None:
    """Give a new connection this codec for `timestamptz` (one round trip, at connect)."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=_encode, decoder=_decode, format="tuple"
    )

"""Parse the times and durations users type: `10m`, `2h30m`, `30d`, ISO-8601."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from agentstore_cli.common import UsageError

__all__ = ["parse_duration", "parse_time"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(value: str, *, option: str) -> timedelta:
    """Parse a duration such as `90s`, `10m`, `2h30m`, `30d`, `1w`.

    Raises `UsageError` naming `option` if it is not one.
    """
    text = value.strip().lower()
    if not text or not _DURATION.fullmatch(text):
        raise UsageError(
            f"invalid {option} {value!r}: use a duration such as 90s, 10m, 2h30m, 30d or 1w"
        )
    seconds = sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(text))
    try:
        delta = timedelta(seconds=seconds)
        # Every duration here is a time ago: it must leave a date (year 1 or later) now,
        # and so at any later moment the command computes it from.
        datetime.now(UTC) - delta
    except OverflowError:
        raise _out_of_range(option, value) from None
    return delta


def _out_of_range(option: str, value: str) -> UsageError:
    return UsageError(f"invalid {option} {value!r}: out of range (dates run from year 1 to 9999)")


def parse_time(value: str, *, option: str, now: datetime | None = None) -> datetime:
    """Parse a point in time: ISO-8601 (`2026-11-27T16:46:51Z`; no zone means UTC) or a
    duration ago (`10m` = ten minutes before now). Returns an aware UTC datetime.
    """
    text = value.strip()
    if text and _DURATION.fullmatch(text.lower()):
        return (now or datetime.now(UTC)) - parse_duration(text, option=option)
    try:
        # Python 3.11 accepts "Z" and most ISO-8601 forms, including a bare date.
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"invalid {option} {value!r}: use ISO-8601 (2026-11-27T16:46:51Z, UTC if no "
            "zone is given) or a time ago such as 10m, 2h, 3d"
        ) from None
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise _out_of_range(option, value) from None

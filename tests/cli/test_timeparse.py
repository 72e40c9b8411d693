"""Times and durations as users type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentstore_cli.common import UsageError
from agentstore_cli.timeparse import parse_duration, parse_time

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h30m", timedelta(hours=2, minutes=30)),
        ("30d", timedelta(days=30)),
        ("1w", timedelta(weeks=1)),
        ("1.5h", timedelta(minutes=90)),
        ("0s", timedelta(0)),
        (" 2H ", timedelta(hours=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, option="--older-than") == expected


@pytest.mark.parametrize("text", ["", "10", "m", "10 m", "-5m", "10y", "1h-5m", "ten minutes"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="invalid --older-than"):
        parse_duration(text, option="--older-than")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", datetime(2026, 11, 27, 11, 50, tzinfo=UTC)),
        ("2026-11-27T16:46:51Z", datetime(2026, 11, 27, 16, 46, 51, tzinfo=UTC)),
        ("2026-11-27T16:46:51.5+02:00", datetime(2026, 11, 27, 14, 46, 51, 500000, tzinfo=UTC)),
        ("2026-11-27 16:46", datetime(2026, 11, 27, 16, 46, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
    ],
)
def test_times(text: str, expected: datetime) -> None:
    parsed = parse_time(text, option="--since", now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["yesterday", "27/11/2026", "2026-13-01", ""])
def test_bad_times(text: str) -> None:
    with pytest.raises(UsageError, match="invalid --since"):
        parse_time(text, option="--since", now=NOW)

"""The time and duration columns pick their unit by the value as shown."""

from __future__ import annotations

import pytest

from agentstore_cli.formats import fmt_duration, fmt_elapsed


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "+0.000s"),
        (9.9994, "+9.999s"),
        (9.9996, "+10.00s"),  # was +10.000s: a column one character wider
        (10.0, "+10.00s"),
        (59.994, "+59.99s"),
        (59.996, "+1m00s"),  # was +60.00s
        (61.0, "+1m01s"),
    ],
)
def test_elapsed(seconds: float, shown: str) -> None:
    assert fmt_elapsed(seconds) == shown


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (0.5, "0.50ms"),
        (999.4, "999ms"),
        (999.6, "1.00s"),  # was 1000ms
        (59_996.0, "1m00s"),  # was 60.00s
        (3_599_999.0, "59m59s"),
        (3_600_000.0, "1h00m"),
    ],
)
def test_duration(ms: float, shown: str) -> None:
    assert fmt_duration(ms) == shown

"""Number and time formats of the CLI's output: 12,345 · $0.0123 · 1.2 s · 3m ago."""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "fmt_ago",
    "fmt_bytes",
    "fmt_cost",
    "fmt_duration",
    "fmt_elapsed",
    "fmt_int",
    "fmt_time",
]


def fmt_int(value: int) -> str:
    """Format an integer with thousands separators: 12,345."""
    return f"{value:,}"


def fmt_cost(value: float) -> str:
    """Format dollars: $1.25, $0.0180, $0.000012."""
    if value >= 1:
        return f"${value:,.2f}"
    if value == 0 or value >= 0.0001:
        return f"${value:.4f}"
    return f"${value:.6f}"


def fmt_duration(ms: float) -> str:
    """Format a duration in milliseconds: 850ms, 1.20s, 2m03s, 1h02m."""
    # Each unit is chosen by the value as it will be shown: 999.6 ms is 1.00s, not
    # 1000ms, and 59.996 s is 1m00s, not 60.00s.
    if round(ms) < 1000:
        return f"{ms:.0f}ms" if ms >= 1 or ms == 0 else f"{ms:.2f}ms"
    seconds = ms / 1000
    if round(seconds, 2) < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(max(int(seconds), 60), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def fmt_elapsed(seconds: float) -> str:
    """Format time since the first shown event: +0.004s, +12.34s, +3m07s, +1h02m."""
    if round(seconds, 3) < 10:  # as shown (9.9996 s is +10.00s, not +10.000s)
        return f"+{seconds:.3f}s"
    if round(seconds, 2) < 60:
        return f"+{seconds:.2f}s"
    return "+" + fmt_duration(seconds * 1000)


def fmt_bytes(size: int) -> str:
    """Format a size: 98 B, 1.2 KB, 3.4 MB (powers of 1024)."""
    if size < 1024:  # every result of a timeline row that fits on a line
        return f"{size} B"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def fmt_time(ts: datetime | None, *, seconds: bool = True) -> str:
    """Format a UTC timestamp: 2026-11-27 16:46:51 (or 2026-11-27 16:46)."""
    if ts is None:
        return "-"
    return ts.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def fmt_ago(ts: datetime, now: datetime) -> str:
    """Format how long ago `ts` was: 12s ago, 5m ago, 3h ago, 2d ago."""
    seconds = max((now - ts).total_seconds(), 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"

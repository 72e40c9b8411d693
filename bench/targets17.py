"""The targets of issue 17 (performance, round 2), read from one `python -m bench` run.

Each is a ratio between rows of the same run (or an absolute figure where the issue names
one). The timeline's figures come from `python -m bench.ab` (its own section).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.report import Section

__all__ = ["issue17_targets"]

Row = dict[str, Any]


def _mean_us(row: Row) -> float:
    return 1e6 / row["ops_per_s"] if row.get("ops_per_s") else float("nan")


def issue17_targets(
    sections: list[Section], heartbeat: tuple[Row, Row, Row] | None
) -> list[tuple[str, str, str]]:
    """Rows (target, measured, verdict) for the issue's table."""
    from bench.report import waiting_note  # report imports this module when it writes

    by = {s.title.split(".")[0]: s for s in sections}
    out: list[tuple[str, str, str]] = []

    def add(target: str, measured: str, ok: bool | None) -> None:
        out.append((target, measured, "met" if ok else ("not met" if ok is False else "n/a")))

    s2 = by.get("2")
    small = s2.find("1,000 events") if s2 else None
    if s2 and small:
        raw1 = s2.peer("(1 writer)")
        if raw1:
            r = small["ops_per_s"] / raw1["ops_per_s"]
            add(
                "durable append, one session, >= 0.5x the raw write+fdatasync loop",
                f"{r:.2f}x",
                r >= 0.5,
            )
        lg = s2.peer("SqliteSaver")
        if lg:
            r = small["ops_per_s"] / lg["ops_per_s"]
            add(
                "durable append, one session, >= 1.0x LangGraph SqliteSaver.put (sync: "
                "`SyncStore`, judged in the sync-peers section below)",
                f"async `Store.append` {r:.2f}x; `SyncStore`: see below",
                None,
            )
    s3 = by.get("3")
    if s3 and (mine := s3.find("sessions")) and (raw1 := s3.peer("(1 writer)")):
        r = mine["ops_per_s"] / raw1["ops_per_s"]
        add("16 sessions by 16 tasks >= 1.2x the raw single writer", f"{r:.2f}x", r >= 1.2)
    one = s3.find("on one session") if s3 else None
    raw1 = s3.peer("(1 writer)") if s3 else None
    if one and raw1:
        r = one["ops_per_s"] / raw1["ops_per_s"]
        add(
            "16 tasks on ONE session >= 1.0x the raw single writer (group commit)",
            f"{r:.2f}x",
            r >= 1.0,
        )
    s1 = by.get("1")
    if s1 and (mem := s1.find("memory")):
        mean = _mean_us(mem)
        add("in-memory new_event + append <= 10 µs", f"{mean:.2f} µs", mean <= 10)
    s5 = by.get("5")
    if s5:
        for label, needle in (
            ("memory", "memory, uncached, no snapshot, 1,000"),
            ("file", "file, cold (reopened), no snapshot, 1,000"),
        ):
            cold = s5.find(needle)
            if cold:
                ms = _mean_us(cold) / 1000
                add(
                    f"cold get_state, 1,000 events, no snapshot ({label}) <= 3 ms",
                    f"{ms:.2f} ms",
                    ms <= 3,
                )
    s6 = by.get("6")
    disk = s6.find("all events") if s6 else None
    bare = s6.peer("bare loop") if s6 else None
    if disk and bare:
        r = disk["ops_per_s"] / bare["ops_per_s"]
        add(
            "replay of 10,000 events from a reopened store >= 0.35x a bare read+orjson loop",
            f"{r:.2f}x",
            r >= 0.35,
        )
    if heartbeat is not None:
        gap, own = heartbeat[0], heartbeat[2]
        mine = own.get("own_gap_ms")
        add(
            "longest event-loop stall during the benchmark (heartbeat) <= 5 ms",
            f"{gap['heartbeat_ms']:.1f} ms{waiting_note(gap)}"
            + ("" if mine is None else f"; the longest gap less its run-queue wait: {mine:.1f} ms"),
            gap["heartbeat_ms"] <= 5,
        )
    add(
        "terminal timeline of 100,000 events to a pipe <= 1.5 s, first screen <= 0.3 s",
        "see the A/B section below (`timeline_*` probes)",
        None,
    )
    return out

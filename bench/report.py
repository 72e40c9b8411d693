"""Turn the measurements into bench/RESULTS.md: a table per scenario, ratios, and the targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GO", "Section", "write_report"]

# The Go original's figures, measured on this kind of machine (2026-11-27); it cannot be
# fetched here, so these are the reference, not numbers from this run.
GO = {
    "append_us": 3.1,
    "get_state_snapshot_us": 9.4,
    "get_state_1000_us": 1700.0,
    "file_append_per_s": 240.0,
    "replay_events_per_s": 160_000.0,
}

Row = dict[str, Any]


def _mean_us(row: Row) -> float:
    return 1e6 / row["ops_per_s"] if row.get("ops_per_s") else float("nan")


def _go_row(
    system: str,
    backend: str,
    *,
    mean_us: float | None = None,
    per_s: float | None = None,
    units: int = 1,
    note: str = "",
) -> Row:
    if per_s is None:
        assert mean_us is not None
        per_s = 1e6 / mean_us / units
    return {
        "system": system,
        "backend": backend,
        "ops_per_s": per_s,
        "units_per_s": per_s * units,
        "units_per_op": units,
        "median_us": None,
        "p99_us": None,
        "go": True,
        "note": note,
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _is_as(row: Row) -> bool:
    return row.get("system") == "agentstore"


@dataclass
class Section:
    """One scenario's table."""

    title: str
    text: str
    rows: list[Row]
    metric: str = "ops"  # "ops" (ops/s), "units" (events/s) or "latency" (mean time per op)
    ref: Callable[[Row], Row | None] = lambda row: None
    extra: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    # --- ratios -----------------------------------------------------------------------------

    def value(self, row: Row) -> float:
        if self.metric == "units":
            return float(row.get("units_per_s") or 0)
        return float(row.get("ops_per_s") or 0)

    def ratio(self, row: Row) -> tuple[float, Row] | None:
        """How many times faster agentstore's reference row is than `row`."""
        if _is_as(row) or "error" in row:
            return None
        ref = self.ref(row)
        if ref is None or not self.value(row):
            return None
        return self.value(ref) / self.value(row), ref

    def find(self, needle: str) -> Row | None:
        for row in self.rows:
            if _is_as(row) and needle in row.get("backend", ""):
                return row
        return None

    def peer(self, needle: str) -> Row | None:
        for row in self.rows:
            if not _is_as(row) and needle in row.get("system", "") and "error" not in row:
                return row
        return None

    # --- rendering --------------------------------------------------------------------------

    def render(self) -> str:
        units = self.metric == "units"
        head = ["System", "Backend / setup", "ops/s"]
        if units:
            head.append("events/s")
        head += [
            "mean µs",
            "median µs",
            "p99 µs",
            "heartbeat gap ms (loop CPU; GC; OS wait)",
            "agentstore ÷ this",
            "note",
        ]
        lines = [
            f"## {self.title}",
            "",
            self.text,
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for row in self.rows:
            if "error" in row:
                lines.append(
                    f"| {row['system']} | — | failed: {row['error'][:120]} |"
                    + " |" * (len(head) - 3)
                )
                continue
            r = self.ratio(row)
            ratio = "—"
            if r is not None:
                ratio = f"**{r[0]:.2f}x** (vs {r[1].get('backend', '')})"
            system = row["system"] + (" *(reference figure)*" if row.get("go") else "")
            cells = [system, row.get("backend", ""), _fmt(row.get("ops_per_s"))]
            if units:
                cells.append(_fmt(row.get("units_per_s")))
            cells += [
                _fmt(_mean_us(row), 2),
                _fmt(row.get("median_us"), 2),
                _fmt(row.get("p99_us"), 2),
                (
                    f"{_fmt(row['heartbeat_ms'], 1)} ({_fmt(row.get('loop_busy_ms'), 1)}; "
                    f"{_fmt(row.get('gc_ms'), 1)}; {_fmt(row.get('gap_waiting_ms'), 1)})"
                    if "heartbeat_ms" in row
                    else ""
                ),
                ratio,
                row.get("note", ""),
            ]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        if self.extra:
            lines += ["", self.extra]
        return "\n".join(lines) + "\n"

    # --- the scenarios ------------------------------------------------------------------------

    @classmethod
    def s1(cls, rows: list[Row]) -> Section:
        rows = [*rows, _go_row("Go original", "memory, BenchmarkAppend", mean_us=GO["append_us"])]
        sec = cls(
            "1. `new_event` + `append`, one session, sequential",
            "10,000 appends of a small map payload to one session, each awaited before the "
            "next (snapshots off, like the Go original's `BenchmarkAppend`). Every peer row "
            "is compared with agentstore's in-memory row.",
            rows,
        )
        mem = sec.find("memory")
        sec.ref = lambda row: mem
        return sec

    @classmethod
    def s2(cls, rows: list[Row]) -> Section:
        rows = [
            *rows,
            _go_row(
                "Go original",
                "file, 2,000 events in the log",
                per_s=GO["file_append_per_s"],
                note="rereads the log per append: slows down as it grows",
            ),
        ]
        sec = cls(
            "2. Durable append (durability `fsync`), one session, sequential",
            "Each append returns only once its line is on disk (`fdatasync`). agentstore is "
            "measured with 1,000 and with 100,000 events already in the log (an append must "
            "cost the same: O(1)). The raw loop writes the same bytes with `os.write` + "
            "`os.fdatasync` on the same disk: the physical limit for one durable writer. "
            "A sync that follows another at once is cheaper than one that comes after a "
            "pause, so a second raw row spins 200 µs between appends (about what a store's "
            "own work takes) and times the write+sync alone: the disk's price for any "
            "store that does something between syncs. "
            "Every other row is compared with agentstore at 1,000 events.",
            rows,
        )
        small = sec.find("1,000 events")
        big = sec.find("00,000 events") or sec.find("events in the log")
        sec.ref = lambda row: small
        if small and big and big is not small:
            sec.facts["flat"] = big["ops_per_s"] / small["ops_per_s"]
            sec.extra = (
                f"Flatness: ops/s at {big.get('log_size', 0):,} events ÷ ops/s at "
                f"1,000 events = **{sec.facts['flat']:.2f}**."
            )
        return sec

    @classmethod
    def s3(cls, rows: list[Row]) -> Section:
        sec = cls(
            "3. Durable append, 16 sessions appended concurrently by 16 tasks",
            "16 tasks, each appending to its own session in a loop (durability `fsync`), "
            "against one writer's raw `fdatasync` loop and 16 threads each syncing their own "
            "file (what the disk gives to parallel syncs). Peers run the same shape "
            "(16 tasks, 16 threads/sessions). The row '16 tasks on one session' has 16 "
            "tasks appending to the same session (group-committed: the appends that wait "
            "for a sync share the next one).",
            rows,
        )
        mine = sec.find("sessions")
        sec.ref = lambda row: mine
        return sec

    @classmethod
    def s4(cls, rows: list[Row]) -> Section:
        sec = cls(
            "4. `append_many` of 100 events",
            "One atomic batch of 100 events per call (one write and one sync on the file "
            "backend). Durable peers are compared with agentstore's file row, in-memory "
            "peers with its memory row.",
            rows,
            metric="units",
        )
        mem, disk = sec.find("memory"), sec.find("file")
        sec.ref = lambda row: disk if row.get("durable") else mem
        return sec

    @classmethod
    def s5(cls, rows: list[Row]) -> Section:
        rows = [
            *rows,
            _go_row(
                "Go original", "memory, GetState with snapshot", mean_us=GO["get_state_snapshot_us"]
            ),
            _go_row(
                "Go original",
                "memory, GetState, 1,000 events, no snapshot",
                mean_us=GO["get_state_1000_us"],
            ),
        ]
        sec = cls(
            "5. `get_state`",
            "Hot: the session's state is in the store's cache (every append folds into it). "
            "Cold: a store freshly opened on the data directory (the OS page cache is warm; "
            "the store's is empty), or on the memory backend a store with no cache and no "
            "snapshots, so that every call folds every event. Hot rows are compared with "
            "langgraph's `get_tuple` (its checkpoint is the whole state) and the Go "
            "original's GetState-with-snapshot; cold rows with eventsourcing's "
            "`repository.get` and the Go original's GetState over 1,000 events.",
            rows,
        )
        mem_hot, file_hot = sec.find("memory, hot"), sec.find("file, hot")
        mem_cold = sec.find("memory, uncached, no snapshot, 1,000")
        file_cold = sec.find("no snapshot, 1,000 events")
        file_snap = sec.find("snapshot at")
        if file_cold is mem_cold:
            file_cold = None
            for row in rows:
                if (
                    _is_as(row)
                    and row.get("backend", "").startswith("file, cold")
                    and "no snapshot, 1,000" in row.get("backend", "")
                ):
                    file_cold = row

        def ref(row: Row) -> Row | None:
            name = row.get("system", "") + " " + row.get("backend", "")
            durable = row.get("durable", False)
            if "get_tuple" in name or "with snapshot" in name:
                return file_hot if durable else mem_hot
            if "(snapshot)" in name:
                return file_snap if durable else mem_hot
            return file_cold if durable else mem_cold

        sec.ref = ref
        return sec

    @classmethod
    def s6(cls, rows: list[Row]) -> Section:
        rows = [
            *rows,
            _go_row(
                "Go original", "file replay", per_s=GO["replay_events_per_s"] / 10_000, units=10_000
            ),
        ]
        sec = cls(
            "6. `replay` of 10,000 events",
            "From disk on a freshly opened store (the OS page cache is warm), all events and "
            "with a type filter that keeps 1 in 10 (events/s counts the 10,000 scanned); "
            "and from the memory backend. Peers read the same number of rows back from "
            "their SQLite files. The bare loop reads the same log file and only "
            "`orjson.loads` each line: the floor a replay is measured against.",
            rows,
            metric="units",
        )
        disk = sec.find("all events")
        sec.ref = lambda row: disk
        return sec

    @classmethod
    def s7(cls, rows: list[Row]) -> Section:
        return cls(
            "7. `list_sessions` on 10,000 sessions (limit 100)",
            "Newest first, the first page of 100. No peer has a comparable call (eventsourcing "
            "and the checkpointers list by thread/aggregate id only).",
            rows,
        )

    @classmethod
    def s8(cls, mem: dict[str, Any], touch: dict[str, Any], index: list[dict[str, Any]]) -> Section:
        lines = [
            "| System | events | RSS growth MiB | bytes/event | peak RSS MiB | this ÷ agentstore |",
            "|---|---|---|---|---|---|",
        ]
        base_bpe = None
        facts: dict[str, Any] = {}
        for name, res in mem.items():
            if "error" in res:
                lines.append(f"| {name} | failed: {res['error']} | | | | |")
                continue
            grow = res["after"]["VmRSS"] - res["before"]["VmRSS"]
            bpe = grow * 2**20 / res["events"]
            if base_bpe is None:
                base_bpe = bpe
                facts["memory_bpe"] = bpe
                facts["memory_peak"] = res["after"]["VmHWM"]
            ratio = f"{bpe / base_bpe:.2f}x" if base_bpe else "—"
            lines.append(
                f"| {name} | {res['events']:,} | {grow:,.1f} | {bpe:,.0f} | "
                f"{res['after']['VmHWM']:,.1f} | {ratio} |"
            )
        lines += [
            "",
            "File backend, RSS while touching sessions (one durable append and one "
            "`get_state` each; the state cache holds 1,024 sessions, open logs 256):",
            "",
            "| point | RSS MiB | peak RSS MiB |",
            "|---|---|---|",
        ]
        for mark, st in touch.get("marks", {}).items():
            lines.append(f"| {mark} | {st['VmRSS']:,.1f} | {st['VmHWM']:,.1f} |")
        facts["touch"] = touch.get("marks", {})
        lines += [
            "",
            "Idempotency index of the file backend (event id -> sequence number, built "
            "when a session is first appended to in a process; freed when its log is "
            "closed, at most 256 logs open):",
            "",
            "| events in the session | index size (tracemalloc) | bytes/event | first append (builds it) |",
            "|---|---|---|---|",
        ]
        for res in index:
            if "error" in res:
                lines.append(f"| failed: {res['error']} | | | |")
                continue
            lines.append(
                f"| {res['events']:,} | {res['bytes'] / 2**20:,.2f} MiB | "
                f"{res['bytes'] / res['events']:,.0f} | {res['first_append_s'] * 1000:,.1f} ms |"
            )
        facts["index"] = index
        sec = cls(
            "8. Memory",
            "Each figure from a fresh process (VmRSS/VmHWM from /proc/self/status).",
            [],
        )
        sec.extra = "\n".join(lines)
        sec.facts = facts
        return sec


def _targets(
    sections: list[Section], heartbeat: tuple[Row, Row, Row] | None
) -> list[tuple[str, str, str]]:
    by = {s.title.split(".")[0]: s for s in sections}
    out: list[tuple[str, str, str]] = []

    def add(target: str, measured: str, ok: bool | None) -> None:
        out.append((target, measured, "met" if ok else ("not met" if ok is False else "n/a")))

    s1 = by.get("1")
    if s1 and (mem := s1.find("memory")):
        mean = _mean_us(mem)
        add(
            "In-memory new_event+append as fast as the Go original (~3.1 µs)",
            f"{mean:.2f} µs/op ({GO['append_us'] / mean:.2f}x the Go figure)",
            mean <= GO["append_us"],
        )
        lg = s1.peer("InMemorySaver")
        if lg:
            r = mem["ops_per_s"] / lg["ops_per_s"]
            add(">= 2x langgraph InMemorySaver.put", f"{r:.2f}x", r >= 2)
    s2 = by.get("2")
    if s2 and (small := s2.find("1,000 events")):
        raw1 = s2.peer("(1 writer)")
        if raw1:
            r = small["ops_per_s"] / raw1["ops_per_s"]
            add(
                "Durable single-session append >= 0.7x the raw write+fdatasync loop",
                f"{r:.2f}x",
                r >= 0.7,
            )
        if "flat" in s2.facts:
            add(
                "Flat from 1,000 to 100,000 events",
                f"{s2.facts['flat']:.2f} (100k ÷ 1k)",
                s2.facts["flat"] >= 0.85,
            )
        sq = s2.peer("raw SQLite")
        if sq:
            r = small["ops_per_s"] / sq["ops_per_s"]
            add(">= 2x SQLite WAL synchronous=FULL, 1 insert/txn", f"{r:.2f}x", r >= 2)
        peers = [
            row
            for row in s2.rows
            if not _is_as(row) and not row.get("raw") and not row.get("go") and "error" not in row
        ]
        if peers:
            worst = min(peers, key=lambda row: small["ops_per_s"] / row["ops_per_s"])
            r = small["ops_per_s"] / worst["ops_per_s"]
            add(
                "Far ahead of every peer's durable store",
                f"closest: {worst['system']} at {r:.2f}x",
                r >= 2,
            )
    s3 = by.get("3")
    if s3 and (mine := s3.find("sessions")) and (raw1 := s3.peer("(1 writer)")):
        r = mine["ops_per_s"] / raw1["ops_per_s"]
        raw16 = s3.peer("threads")
        extra = (
            f"; raw 16 threads give {raw16['ops_per_s'] / raw1['ops_per_s']:.2f}x" if raw16 else ""
        )
        add(
            "16 concurrent sessions >= 3x the single-writer raw fdatasync rate",
            f"{r:.2f}x{extra}",
            r >= 3,
        )
    s5 = by.get("5")
    if s5:
        for label, needle in (("memory", "memory, hot"), ("file", "file, hot")):
            hot = s5.find(needle)
            if hot:
                mean = _mean_us(hot)
                add(
                    f"Hot get_state ({label}) under half the Go GetState-with-snapshot (< 4.7 µs)",
                    f"{mean:.2f} µs ({GO['get_state_snapshot_us'] / mean:.2f}x faster than Go)",
                    mean < GO["get_state_snapshot_us"] / 2,
                )
        for label, needle in (
            ("memory", "memory, uncached, no snapshot, 1,000"),
            ("file", "file, cold (reopened), no snapshot, 1,000"),
        ):
            cold = s5.find(needle)
            if cold:
                mean = _mean_us(cold)
                add(
                    f"Cold get_state over 1,000 events, no snapshot ({label}) <= ~1.7 ms",
                    f"{mean / 1000:.2f} ms ({GO['get_state_1000_us'] / mean:.2f}x the Go speed)",
                    mean <= GO["get_state_1000_us"],
                )
    s6 = by.get("6")
    if s6 and (disk := s6.find("all events")):
        add(
            "Replay of 10,000 events from disk >= ~160k events/s",
            f"{disk['units_per_s']:,.0f} events/s ({disk['units_per_s'] / GO['replay_events_per_s']:.2f}x)",
            disk["units_per_s"] >= GO["replay_events_per_s"],
        )
    if heartbeat is not None:
        gap, busy, own = heartbeat
        add(
            "Nothing blocks the event loop for more than 5 ms: longest heartbeat gap",
            f"{gap['heartbeat_ms']:.1f} ms ({_where(sections, gap)}{waiting_note(gap)})",
            gap["heartbeat_ms"] <= 5,
        )
        add(
            "... the most CPU time the loop's own thread spent between two ticks",
            f"{busy['loop_busy_ms']:.1f} ms ({_where(sections, busy)}; its longest GC "
            f"pause: {busy.get('gc_ms', 0.0):.1f} ms)",
            busy["loop_busy_ms"] <= 5,
        )
        if own.get("own_gap_ms") is not None:
            add(
                "... the longest gap less the time the OS kept the loop's thread waiting for "
                "a CPU (what this process held the loop for: its code, collections, the GIL "
                "held by its other threads, which a busy machine may also have kept waiting)",
                f"{own['own_gap_ms']:.1f} ms ({_where(sections, own)})",
                own["own_gap_ms"] <= 5,
            )
    return out


def waiting_note(row: Row) -> str:
    """How much of a row's longest gap the loop's thread spent waiting for a CPU."""
    waiting = row.get("gap_waiting_ms")
    if waiting is None:
        return ""
    return f"; of it, {waiting:.1f} ms the loop's thread was ready but not run by the OS"


def _where(sections: list[Section], row: Row) -> str:
    for sec in sections:
        if any(r is row for r in sec.rows):
            return f"scenario {sec.title.split('.')[0]}, {row.get('backend', '')}"
    return "?"


def write_report(
    path: Path,
    info: dict[str, str],
    sections: list[Section],
    locks: list[dict[str, Any]],
    hops: list[dict[str, Any]],
    breakdown: dict[str, float],
    *,
    quick: bool = False,
) -> None:
    """Write RESULTS.md."""
    beats = [r for s in sections for r in s.rows if "heartbeat_ms" in r]
    worst = (
        (
            max(beats, key=lambda r: r["heartbeat_ms"]),
            max(beats, key=lambda r: r.get("loop_busy_ms", 0.0)),
            max(beats, key=lambda r: r.get("own_gap_ms") or 0.0),
        )
        if beats
        else None
    )
    out = [
        "# agentstore benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); do not edit by hand."
        + (" **This is a --quick smoke run: sizes are 10x smaller.**" if quick else ""),
        "",
        "The machine is shared and noisy: absolute numbers drift between runs. Every ratio "
        "below compares numbers measured in this one run, minutes apart. The Go original "
        "cannot be fetched here; its figures (measured on this kind of machine on "
        "2026-11-27) are quoted as the reference and marked as such.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    for key in (
        "date",
        "cores",
        "cpu",
        "os",
        "python",
        "packages",
        "peers",
        "disk",
        "load",
        "load_end",
        "runtime",
    ):
        if key in info:
            out.append(f"| {key.replace('_', ' ')} | {info[key]} |")
    out += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]
    for target, measured, verdict in _targets(sections, worst):
        out.append(f"| {target} | {measured} | {verdict} |")
    out += [
        "",
        "Columns: ops/s over the whole run; mean = 1/ops/s; median and p99 of per-call "
        "latency; heartbeat gap = the longest gap between ticks of a 1 ms heartbeat task "
        "that ran on the same event loop during that row, and in brackets the CPU time the "
        "loop's own thread used within that gap (code holding the loop; the rest of a gap "
        "is the machine's other tenants, or a worker thread holding the GIL), then the "
        "longest pause of Python's garbage collector during the row (it runs in whichever "
        "thread allocates, and counts in the loop's CPU time when that is the loop's), then "
        "how long within the longest gap the loop's thread was ready to run but the OS ran "
        "something else (its run-queue wait from /proc: the machine's share of the gap; "
        "the rest of a gap beyond CPU and that wait is the loop waiting for the GIL or a "
        "system call). agentstore "
        "rows only; sequential loops give the loop a turn after every call, outside the "
        "timed region, as an agent does between steps; freeing what a call returned "
        "(10,000 events of a replay: 3-7 ms here, as for any Python program that drops "
        "that many objects) is the harness's act, like its collections, and kept out of the "
        "gaps (the latency still counts it; the longest such drop is in the row's `drop_ms`). "
        "agentstore ÷ this = how many times "
        "agentstore's row named in brackets outdoes this row (above 1: agentstore is "
        "faster). Scenarios 1-6 ran `rounds` times, interleaved with the baselines and "
        "peers; every row shows its best round (and its worst heartbeat). The process "
        "freezes its start-up heap (`gc.freeze()` after its imports), as docs/performance.md "
        "advises long-running agents; what every row creates after that is collected as usual.",
        "",
    ]
    from bench.targets17 import issue17_targets  # the round-2 table, kept out of this file

    out += ["## Issue 17 targets (round 2)", "", "| target | measured | |", "|---|---|---|"]
    for target, measured, verdict in issue17_targets(sections, worst):
        out.append(f"| {target} | {measured} | {verdict} |")
    out.append("")
    for sec in sections:
        out.append(sec.render())
    out += [
        "## Design measurements",
        "",
        "Per-session lock (the store takes one around each file-backend append; the memory "
        "backend's calls never suspend, so it takes none):",
        "",
        "| lock | uncontended acquire+release ns | 16 tasks contending, µs per acquire |",
        "|---|---|---|",
    ]
    for row in locks:
        out.append(
            f"| {row['system']} | {row['uncontended_ns']:,.0f} | {row['contended_us']:,.2f} |"
        )
    by_name = {row["system"]: row for row in locks}
    fast, plain = by_name.get("anyio.Lock(fast_acquire=True)"), by_name.get("asyncio.Lock()")
    if fast and plain:
        out += [
            "",
            f"The store keeps `anyio.Lock(fast_acquire=True)` for the file backend: it costs "
            f"{(fast['uncontended_ns'] - plain['uncontended_ns']) / 1000:.1f} µs more than "
            "`asyncio.Lock` per uncontended append (well under 1% of a durable append), the "
            "same under contention, and works on every anyio backend. The memory backend "
            "takes no lock at all (its appends never suspend).",
        ]
    out += [
        "",
        "How a durable append can reach the disk from the event loop: one hop to a worker "
        "thread and back, by anyio and by a bare `SimpleQueue` + `call_soon_threadsafe` "
        "pool (what the store's commit thread does for a lone append; the sync itself "
        "dwarfs the difference):",
        "",
        "| path | ops/s | median µs | p99 µs |",
        "|---|---|---|---|",
    ]
    for row in hops:
        out.append(
            f"| {row['system']} | {row['ops_per_s']:,.0f} | {row['median_us']:,.1f} | "
            f"{row['p99_us']:,.1f} |"
        )
    out += [
        "",
        "Where a durable append's time goes (one session, sequential, default settings; "
        "median µs per stage, from an instrumented run; medians, so they need not add up "
        "to the mean per append):",
        "",
        "| stage | µs |",
        "|---|---|",
    ]
    for stage, value in breakdown.items():
        out.append(f"| {stage} | {_fmt(value, 1)} |")
    out.append("")
    path.write_text("\n".join(out))

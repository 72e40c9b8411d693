"""`python -m bench [--quick] [--out bench/RESULTS.md]`: run every scenario, write RESULTS.md.

agentstore runs in this interpreter (the project's venv); the peers run in a worker process
in `bench/.venv-peers` (set up by `make bench`), scenario by scenario, interleaved with
agentstore's runs so that each ratio compares numbers taken minutes apart on the same
(shared, noisy) machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import micro, raw, scenarios
from bench.report import GO, Section, write_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
DATA = HERE / ".data"


class Peers:
    """The peers' worker process (see `bench.peers`), or a stand-in when it is missing."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        if PEERS_PY.exists():
            self.proc = subprocess.Popen(
                [str(PEERS_PY), "-m", "bench.peers"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        else:
            print(f"! no peers venv at {PEERS_PY.parent.parent}: run `make bench`", file=sys.stderr)

    def call(self, cmd: str, **args: Any) -> Any:
        if self.proc is None or self.proc.stdin is None or self.proc.stdout is None:
            return [] if cmd != "versions" else {}
        self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return [{"system": f"peers ({cmd})", "error": "the peers' worker died"}]
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


Row = dict[str, Any]


def best_of(runs: list[list[Row]]) -> list[Row]:
    """Merge rounds: per row (system + setup), the best throughput and the worst heartbeat."""
    merged: dict[tuple[str, str], Row] = {}
    for rows in runs:
        for row in rows:
            key = (row.get("system", ""), row.get("backend", ""))
            have = merged.get(key)
            if have is None or "error" in have:
                merged[key] = dict(row, rounds=1)
                continue
            if "error" in row:
                continue
            beats = {
                k: max(have.get(k, 0.0), row.get(k, 0.0))
                for k in ("heartbeat_ms", "loop_busy_ms", "gc_ms", "drop_ms", "own_gap_ms")
                if row.get(k) is not None
            }
            # The run-queue wait belongs to the longest gap: the round that had it.
            if row.get("heartbeat_ms", 0.0) > have.get("heartbeat_ms", 0.0):
                beats["gap_waiting_ms"] = row.get("gap_waiting_ms")
            elif "gap_waiting_ms" in have:
                beats["gap_waiting_ms"] = have["gap_waiting_ms"]
            rounds = have["rounds"] + 1
            if row.get("ops_per_s", 0) > have.get("ops_per_s", 0):
                have = merged[key] = dict(row)
            have.update(beats, rounds=rounds)
    return list(merged.values())


def memproc(python: Path | str, kind: str, n: int, *extra: str) -> dict[str, Any]:
    """Run one scenario-8 measurement in a fresh process."""
    proc = subprocess.run(
        [str(python), "-m", "bench.memproc", kind, str(n), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout)


def machine(disk: str) -> dict[str, str]:
    """Describe the machine, the software and the disk."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    pkgs = []
    for name in ("agentstore", "pydantic", "pydantic-core", "orjson", "anyio", "aiofiles"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            pkgs.append(f"{name} {metadata.version(name)}")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(pkgs),
        "disk": disk,
        "load": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of scenarios 1-6")
    opts = parser.parse_args()
    q = 10 if opts.quick else 1
    DATA.mkdir(exist_ok=True)
    base = DATA
    started = time.perf_counter()
    info = machine(scenarios.disk_info(base))
    peers = Peers()
    info["peers"] = ", ".join(f"{k} {v}" for k, v in peers.call("versions").items())
    line = scenarios.sample_line()
    sections: list[Section] = []
    # A benchmark is a long-running process: it does what docs/performance.md advises and
    # freezes its start-up heap once start-up is done (the imported libraries, and the
    # modules a first store of each kind loads; a full collection of it takes 15-30 ms
    # here), so the heartbeat shows the stalls of what runs after start-up.
    asyncio.run(scenarios.start_up(base))
    gc.collect()
    gc.freeze()

    def step(title: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {title}", file=sys.stderr, flush=True)

    rounds = 1 if opts.quick else opts.rounds
    try:
        # Scenarios 1-6 run `rounds` times, agentstore, baselines and peers in turn each
        # round; each row keeps its best round (the least disturbed by the other tenants
        # of this machine) and its worst heartbeat.
        def s1() -> list[Row]:
            rows = asyncio.run(scenarios.append_memory(10_000 // q, base))
            return rows + peers.call("append_memory", n=10_000 // q, base=str(base))

        def s2() -> list[Row]:
            rows = asyncio.run(scenarios.append_durable(1000 // q, [1000, 100_000 // q], base))
            rows += [raw.fdatasync_loop(base, line, 1000 // q)]
            rows += [raw.fdatasync_loop(base, line, 1000 // q, gap_us=200)]
            rows += [raw.sqlite_wal_full(base, line, 1000 // q)]
            return rows + peers.call("append_durable", n=1000 // q, base=str(base))

        def s3() -> list[Row]:
            rows = asyncio.run(scenarios.append_concurrent(200 // q, 16, base))
            rows += asyncio.run(scenarios.append_one_session(200 // q, 16, base))
            rows += [raw.fdatasync_loop(base, line, 1000 // q)]
            rows += [raw.fdatasync_threads(base, line, 200 // q, 16)]
            return rows + peers.call(
                "append_concurrent", n_per_session=60 // q, sessions=16, base=str(base)
            )

        def s4() -> list[Row]:
            rows = asyncio.run(scenarios.append_batch(200 // q, 100, base))
            return rows + peers.call("append_batch", batches=50 // q, size=100, base=str(base))

        def s5() -> list[Row]:
            rows = asyncio.run(scenarios.get_state(4000 // q, base))
            return rows + peers.call("get_state", events=1000, reps=100 // q, base=str(base))

        def s6() -> list[Row]:
            rows = asyncio.run(scenarios.replay(10_000, 10 // q or 2, base))
            return rows + peers.call("replay", events=10_000, reps=10 // q or 2, base=str(base))

        plan = [
            ("1: new_event + append", s1, Section.s1),
            ("2: durable append", s2, Section.s2),
            ("3: 16 sessions concurrently", s3, Section.s3),
            ("4: append_many of 100", s4, Section.s4),
            ("5: get_state", s5, Section.s5),
            ("6: replay", s6, Section.s6),
        ]
        results: list[list[list[Row]]] = [[] for _ in plan]
        for r in range(rounds):
            for k, (title, run, _) in enumerate(plan):
                step(f"round {r + 1}/{rounds}, {title}")
                results[k].append(run())
        for k, (_, _, make) in enumerate(plan):
            sections.append(make(best_of(results[k])))

        step("7: list_sessions")
        rows = asyncio.run(scenarios.list_sessions(10_000 // q, 50 // q, base))
        sections.append(Section.s7(rows))

        step("8: memory")
        mem: dict[str, Any] = {}
        n8 = 100_000 // q
        mem["agentstore"] = memproc(sys.executable, "agentstore_memory", n8)
        if PEERS_PY.exists():
            mem["langgraph InMemorySaver"] = memproc(PEERS_PY, "langgraph_memory", n8)
            mem["eventsourcing POPO recorder"] = memproc(PEERS_PY, "eventsourcing_popo", n8)
        with scenarios.tmpdir(base) as tmp:
            scenarios.write_sessions(tmp, 10_000 // q)
            touch = memproc(sys.executable, "agentstore_file_touch", 10_000 // q, str(tmp))
        with scenarios.tmpdir(base) as tmp:
            index = [
                memproc(sys.executable, "agentstore_id_index", k // q, str(tmp / str(k)))
                for k in (10_000, 100_000)
            ]
        sections.append(Section.s8(mem, touch, index))

        step("design: locks and thread hops")
        lock_rows = asyncio.run(micro.locks(200_000 // q, 16, 2000 // q))
        hop_rows = asyncio.run(micro.hops(base, line, 1000 // q))
        breakdown = asyncio.run(micro.append_breakdown(base, 800 // q))
    finally:
        peers.close()
    info["load_end"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    info["runtime"] = f"{time.perf_counter() - started:.0f} s" + (
        " (--quick)" if opts.quick else ""
    )
    write_report(opts.out, info, sections, lock_rows, hop_rows, breakdown, quick=opts.quick)
    step(f"wrote {opts.out}")
    _ = GO


if __name__ == "__main__":
    main()

"""`python -m bench.server_grpc_probe [--rounds 6] [--seconds 2]`: where a gRPC append's time goes.

A diagnostic beside `bench/server_grpc.py`, not part of `make bench`. It drives the same
16 `AppendStream` clients (one process, a channel and a call each) against servers that
differ in one thing, interleaved round by round so that a noisy shared machine slows
each alike, and prints per variant the medians of:

- appends/s, and the server process's CPU per append (all its threads);
- the event loop thread's share of that CPU, and how often per append that thread was
  preempted (involuntary context switches: it holds the interpreter lock most of the
  time, so every other thread of the server waits while it is off the CPU);
- the CPU of every other thread of the server (commit thread, AIO reaper, grpcio's
  poller and event-engine threads, workers) per append.

The variants: `memory` (an in-memory store: the door and the transport alone), `flush`
(a file store with durability `flush`: the file store's work without `fdatasync`),
`fsync` (what `agentstore serve` runs: a file store, durability `fsync`), and `batch`
(`fsync` with every thread of the server under `SCHED_BATCH`, so a thread it wakes does not
preempt the loop thread; Linux only). The differences between them, in the same run,
say what each layer costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench import server_grpc

HERE = Path(__file__).resolve().parent
VARIANTS = ("memory", "flush", "fsync", "batch")


def _batch() -> None:
    # In the child before it runs Python: every thread it starts inherits the policy.
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _serve(data_dir: str, durability: str) -> None:
    """Run the gRPC door over a store of this kind until SIGTERM (the server process)."""
    from agentstore.server import runner
    from agentstore.server.service import Limits

    def open_store(config: runner.ServerConfig) -> Any:
        import agentstore

        if data_dir == ":memory:":
            return agentstore.open(in_memory=True)
        return agentstore.open(data_dir, durability=durability)  # type: ignore[arg-type]

    runner._open_store = open_store
    config = runner.ServerConfig(
        in_memory=True, http_port=None, grpc_port=0, limits=Limits(max_streams=512)
    )
    asyncio.run(runner.serve(config, announce=lambda text: print(text, flush=True)))


def _threads(pid: int) -> dict[int, tuple[int, int, int]]:
    """Per thread of `pid`: (user + system clock ticks, voluntary, involuntary switches)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        switches = {
            line.split(":")[0]: int(line.split()[1])
            for line in status.splitlines()
            if "ctxt_switches:" in line
        }
        out[int(tid)] = (
            int(fields[11]) + int(fields[12]),
            switches.get("voluntary_ctxt_switches", 0),
            switches.get("nonvoluntary_ctxt_switches", 0),
        )
    return out


def measure(variant: str, seconds: float, base: Path) -> dict[str, float]:
    """One run of the 16 AppendStream clients against a fresh server of this variant."""
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        where = ":memory:" if variant == "memory" else tmp
        durability = "flush" if variant == "flush" else "fsync"
        cmd = [sys.executable, "-m", "bench.server_grpc_probe", "--serve", where, durability]
        proc = subprocess.Popen(
            cmd,
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=_batch if variant == "batch" else None,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"the {variant} server did not start (exit {proc.wait()})")
            target = orjson.loads(line)["listening"]["grpc"]
            before = _threads(proc.pid)
            row = asyncio.run(server_grpc.grpc_rows(target, proc.pid, seconds, ["stream"], (16,)))
            after = _threads(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    appends = row[0]["ops_per_s"] * seconds
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")

    def delta(tid: int, i: int) -> int:
        return after[tid][i] - before.get(tid, (0, 0, 0))[i]

    main = proc.pid  # the event loop runs on the process's first thread
    others = [tid for tid in after if tid != main]
    return {
        "appends/s": row[0]["ops_per_s"],
        "server us/append": row[0]["server_cpu_us"],
        "loop thread us/append": delta(main, 0) * tick_us / appends,
        "loop preempted /append": delta(main, 2) / appends,
        "other threads us/append": sum(delta(t, 0) for t in others) * tick_us / appends,
        "other threads switches /append": sum(delta(t, 1) + delta(t, 2) for t in others) / appends,
    }


def main() -> None:
    """Run the variants interleaved and print their medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--serve", nargs=2, metavar=("DIR", "DURABILITY"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.serve:
        _serve(opts.serve[0], opts.serve[1])
        return
    variants = opts.variants.split(",")
    base = HERE / ".data"
    base.mkdir(exist_ok=True)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    for r in range(opts.rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for variant in order:
            runs[variant].append(measure(variant, opts.seconds, base))
        print(
            f"round {r + 1}: "
            + ", ".join(f"{v} {runs[v][-1]['appends/s']:,.0f}/s" for v in variants),
            flush=True,
        )
    print(f"\nmedians of {opts.rounds} interleaved rounds, load {os.getloadavg()[0]:.2f}:")
    keys = list(runs[variants[0]][0])
    print("| variant | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for variant in variants:
        cells = [statistics.median(run[k] for run in runs[variant]) for k in keys]
        print(f"| {variant} | " + " | ".join(f"{c:,.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()

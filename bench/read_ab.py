"""A/B of the read side (issue 17): replay, cold get_state and the loop's stalls, two trees.

```
python bench/read_ab.py --base DIR --new DIR [--rounds 5] [PROBE ...]
```

Each tree is a directory holding an `agentstore` package (e.g. `git archive HEAD agentstore
| tar -x -C DIR`, then the changed files copied over it, so that other people's unfinished
edits in the working tree do not get in). Every round runs each probe once per tree,
alternating which goes first, each in a fresh process, so that the other tenants of this
shared machine slow both sides alike; read the ratio of the medians, not the absolute
numbers. A probe prints a JSON object of figures (smaller is better for every one of them).
`READ_AB_FREEZE=1` in the environment: the replay probe calls `gc.freeze()` once its
data is written, as docs/performance.md advises long-running agents (and `make bench`
does). The `bench_figures` probe (not run by default: about 20 s a run) runs the
benchmark's own scenarios 5 and 6 and reports the two issue-17 read figures.

Run as a script (`python bench/read_ab.py PROBE` with `PYTHONPATH=tree` is one probe run),
not with -m: the tree under test must come first on `sys.path`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TYPES = [
    "user_message",
    "plan_created",
    "tool_called",
    "tool_result",
    "llm_request",
    "llm_response",
    "state_updated",
    "error",
    "custom",
    "cache_hit",
]


class Beat:
    """A 1 ms heartbeat on the loop, and the longest pause of the cyclic collector."""

    def __init__(self) -> None:
        self.gap_ms = 0.0
        self.gc_ms = 0.0
        self.gc_gen2 = 0
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.gap_ms = max(self.gap_ms, (now - last) * 1000)
            last = now

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.gc_ms = max(self.gc_ms, (time.perf_counter() - self._started) * 1000)
            self.gc_gen2 += info["generation"] == 2

    async def __aenter__(self) -> Beat:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0.002)
        self.gap_ms = self.gc_ms = 0.0
        self.gc_gen2 = 0
        gc.callbacks.append(self._gc)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        gc.callbacks.remove(self._gc)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _fill(tmp: str, count: int, *, kinds: bool) -> str:
    import agentstore
    from agentstore import new_event

    async with agentstore.open(tmp, snapshot_interval=0, durability="flush") as store:
        sid = (await store.create_session()).id
        for done in range(0, count, 1000):
            await store.append_many(
                sid,
                [
                    new_event(
                        TYPES[(done + j) % 10] if kinds else "tool_called",
                        {"tool": "search_flights", "query": "BER -> MUC", "step": done + j},
                    )
                    for j in range(1000)
                ],
            )
    return sid


def _bare(log: Path) -> float:
    import orjson

    loads = orjson.loads
    t0 = time.perf_counter()
    with log.open("rb") as handle:
        got = [loads(line) for line in handle]
    elapsed = time.perf_counter() - t0
    del got
    return elapsed


async def replay() -> dict[str, float]:
    """Replay of 10,000 events from a reopened file store, against the bare read+loads loop."""
    import agentstore

    with tempfile.TemporaryDirectory() as tmp:
        sid = await _fill(tmp, 10_000, kinds=True)
        if os.environ.get("READ_AB_FREEZE"):
            # What docs/performance.md advises a long-running agent: start-up's heap
            # (imports, the store) out of the collector's sight.
            gc.collect()
            gc.freeze()
        log = Path(tmp) / "events" / f"{sid}.jsonl"
        mine: list[float] = []
        bare: list[float] = []
        async with Beat() as beat:
            for _ in range(9):
                bare.append(_bare(log))
                async with agentstore.open(tmp) as fresh:
                    t0 = time.perf_counter()
                    got = await fresh.replay(sid)
                    mine.append(time.perf_counter() - t0)
                    assert len(got) == 10_000
                del got
        ms, bare_ms = statistics.median(mine) * 1e3, statistics.median(bare) * 1e3
        return {
            "replay_ms": ms,
            "bare_ms": bare_ms,
            "slowdown_vs_bare": ms / bare_ms,
            "stall_ms": beat.gap_ms,
            "gc_ms": beat.gc_ms,
            "full_gcs": beat.gc_gen2,
        }


async def cold_state() -> dict[str, float]:
    """Cold get_state of 1,000 events from a reopened file store, no snapshot."""
    import agentstore

    with tempfile.TemporaryDirectory() as tmp:
        sid = await _fill(tmp, 1000, kinds=False)
        lat: list[float] = []
        async with Beat() as beat:
            for _ in range(30):
                async with agentstore.open(tmp, snapshot_interval=0) as fresh:
                    t0 = time.perf_counter()
                    await fresh.get_state(sid)
                    lat.append(time.perf_counter() - t0)
        return {
            "cold_ms": statistics.median(lat) * 1e3,
            "cold_best_ms": min(lat) * 1e3,
            "stall_ms": beat.gap_ms,
            "gc_ms": beat.gc_ms,
        }


async def memory_append() -> dict[str, float]:
    """µs per new_event + append in memory, the state cached (the fold runs)."""
    import agentstore
    from agentstore import new_event

    async with agentstore.open(in_memory=True, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        await store.get_state(sid)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for i in range(5000):
                await store.append(sid, new_event("tool_called", {"step": i}))
            best = min(best, (time.perf_counter() - t0) / 5000 * 1e6)
            await asyncio.sleep(0)
        return {"append_us": best}


async def bench_figures() -> dict[str, float]:
    """The two issue-17 read figures as `make bench` computes them (scenarios 5 and 6).

    Runs `bench.scenarios` itself (the repository's, after the tree under test on the
    path), with the start-up heap frozen as `python -m bench` does. About 20 s a run.
    """
    sys.path.append(str(HERE.parent))  # after the tree: its agentstore comes first
    from bench import scenarios

    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        rows = await scenarios.replay(10_000, 10, Path(tmp))
        replay = next(r for r in rows if r["backend"] == "file, cold (reopened), all events")
        bare = next(r for r in rows if r.get("raw"))
        rows = await scenarios.get_state(4000, Path(tmp))
        label = "file, cold (reopened), no snapshot, 1,000 events"
        cold = next(r for r in rows if r["backend"] == label)
    return {
        # Smaller is better for every figure (see `compare`): the slowdown, not the ratio.
        "replay_vs_bare": bare["units_per_s"] / replay["units_per_s"],
        "cold_1000_mean_ms": 1000 / cold["ops_per_s"],
        "cold_1000_median_ms": cold["median_us"] / 1000,
    }


PROBES: dict[str, Callable[[], Awaitable[dict[str, float]]]] = {
    "replay": replay,
    "cold_state": cold_state,
    "memory_append": memory_append,
    "bench_figures": bench_figures,
}


def run_probe(tree: Path, probe: str) -> dict[str, float]:
    """Run `probe` in a fresh interpreter whose `agentstore` comes from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), probe],
        env=env,
        cwd=tempfile.gettempdir(),  # not the repository root: its agentstore would shadow
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def compare(base: Path, new: Path, probes: list[str], rounds: int) -> None:
    """Interleave the two trees' runs of each probe; print medians and ratios."""
    for probe in probes:
        runs: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
        for r in range(rounds):
            order = [("base", base), ("new", new)]
            if r % 2:
                order.reverse()
            for name, tree in order:
                runs[name].append(run_probe(tree, probe))
        print(f"{probe} ({rounds} rounds; median [min-max] per tree; ratio = base / new)")
        for key in runs["base"][0]:
            a = [run[key] for run in runs["base"]]
            b = [run[key] for run in runs["new"]]
            ma, mb = statistics.median(a), statistics.median(b)
            print(
                f"  {key:18s} base {ma:9.3f} [{min(a):.3f}-{max(a):.3f}]"
                f"  new {mb:9.3f} [{min(b):.3f}-{max(b):.3f}]  x{ma / mb if mb else 0:.2f}",
                flush=True,
            )


def main() -> None:
    """Command line: a driver with --base/--new, or one probe run (for the driver)."""
    if len(sys.argv) == 2 and sys.argv[1] in PROBES:
        print(json.dumps(asyncio.run(PROBES[sys.argv[1]]())))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("probes", nargs="*", default=[p for p in PROBES if p != "bench_figures"])
    args = parser.parse_args()
    compare(args.base.resolve(), args.new.resolve(), args.probes, args.rounds)


if __name__ == "__main__":
    main()

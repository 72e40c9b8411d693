"""A/B of this round's changes: each probe run against two source trees, interleaved.

```
python -m bench.ab --base DIR [--rounds 5] [--write bench/RESULTS.md] [PROBE ...]
```

`--base` is a copy of the package before the changes (e.g. `git archive <commit> agentstore
agentstore_cli | tar -x -C DIR`). Every round runs each probe once on the base and once on
the working tree, alternating which goes first, each in a fresh process
(`bench/ab_probe.py`), so a noisy shared machine slows both sides alike; the ratio of the
medians (base / new, above 1 = faster now) is what to read, never the absolute numbers
against another run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.ab_probe import PROBES

__all__ = ["main", "run_probe"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARK = "<!-- ab -->"
TIMELINE = HERE / ".data" / "cli" / "long-100000-v2"  # built by `python -m bench.cli`


def _build_timeline_data() -> None:
    if not TIMELINE.exists():
        (HERE / ".data" / "cli").mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "bench.cli", "--build", "--sessions", "100"]
        subprocess.run(cmd, cwd=ROOT, check=True)


def run_probe(tree: Path, probe: str) -> float:
    """Run `probe` in a fresh interpreter whose `agentstore` comes from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "AGENTSTORE_AB_TIMELINE_DATA": str(TIMELINE)}
    out = subprocess.run(
        [sys.executable, str(HERE / "ab_probe.py"), probe],
        env=env,
        cwd=HERE,  # not the repository root: its agentstore must not shadow `tree`'s
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout))


def compare(base: Path, probes: list[str], rounds: int) -> list[dict[str, Any]]:
    """Interleave base and new runs of each probe; return medians and ratios."""
    rows = []
    for probe in probes:
        a: list[float] = []
        b: list[float] = []
        for r in range(rounds):
            order = [(base, a), (ROOT, b)] if r % 2 == 0 else [(ROOT, b), (base, a)]
            for tree, sink in order:
                sink.append(run_probe(tree, probe))
        med_a, med_b = statistics.median(a), statistics.median(b)
        rows.append(
            {
                "probe": probe,
                "what": (PROBES[probe].__doc__ or "").strip(),
                "before": med_a,
                "after": med_b,
                "ratio": med_a / med_b,
            }
        )
        print(f"{probe}: before {med_a:.2f}  after {med_b:.2f}  x{med_a / med_b:.2f}", flush=True)
    return rows


def table(rows: list[dict[str, Any]], base_label: str) -> str:
    """The A/B rows as a markdown section."""
    lines = [
        MARK,
        "## Issue 17, round 2: A/B of each change (one run, interleaved)",
        "",
        f"Before: {base_label}; after: the working tree. Medians of interleaved fresh-process",
        "runs on this (shared, 2-core) machine; the speed-up is before / after.",
        "",
        "| probe | measures | before | after | speed-up |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['probe']}` | {row['what']} | {row['before']:.2f} | {row['after']:.2f} "
            f"| {row['ratio']:.2f}x |"
        )
    after = {row["probe"]: row["after"] for row in rows}
    if "timeline_total" in after and "timeline_first_screen" in after:
        total, first = after["timeline_total"], after["timeline_first_screen"]
        met = "met" if total <= 1.5 and first <= 0.3 else "not met"
        lines += [
            "",
            f"Issue 17's timeline target (the whole 100,000-event timeline to a pipe <= 1.5 s,"
            f" the first screen <= 0.3 s): {total:.2f} s and {first:.2f} s: **{met}**.",
        ]
    return "\n".join(lines) + "\n" + MARK + "\n"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--label", default="the commit before issue 17 round 2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", type=Path)
    parser.add_argument("probes", nargs="*", default=list(PROBES))
    args = parser.parse_args()
    if any(probe.startswith("timeline") for probe in args.probes):
        _build_timeline_data()
    rows = compare(args.base.resolve(), args.probes, args.rounds)
    if args.write:
        text = args.write.read_text() if args.write.exists() else ""
        section = table(rows, args.label)
        if text.count(MARK) >= 2:
            head, _, rest = text.partition(MARK)
            _, _, tail = rest.partition(MARK + "\n")
            text = head + section + tail
        else:
            text = text.rstrip("\n") + "\n\n" + section
        args.write.write_text(text)


if __name__ == "__main__":
    main()

"""`python -m bench.cli`: how fast the `agentstore` CLI opens large data directories.

The issue asks that `sessions` on 10,000 sessions and `replay` of a 100,000-event session
not load more than they show. This builds both data directories once (in bench/.data/cli),
then runs the installed console script in real processes and prints wall time and peak
memory (max RSS) for each command. Startup alone (`--version`) is the baseline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "cli"
AGENTSTORE = str(Path(sys.executable).parent / "agentstore")


async def _build_many(path: Path, sessions: int) -> None:
    import agentstore  # only in the builder process (see main)

    if path.exists():  # noqa: ASYNC240 - a one-off check in a build script
        return
    async with agentstore.open(path, durability="flush") as store:
        for index in range(sessions):
            session = await store.create_session(name=f"run-{index}", labels={"env": "bench"})
            await store.append_many(
                session.id,
                [
                    agentstore.user_message(f"task {index}"),
                    agentstore.llm_response("gpt-4o", "ok", tokens_in=100, tokens_out=20),
                ],
            )


async def _build_long(path: Path, events: int) -> str:
    import agentstore

    if path.exists():  # noqa: ASYNC240 - a one-off check in a build script
        return "long-run"
    async with agentstore.open(path, durability="flush") as store:
        session = await store.create_session(name="long-run", session_id="long-run")
        batch = 1000
        for start in range(0, events, batch):
            chunk = []
            for i in range(start, min(start + batch, events), 4):
                # A realistic mix: a message, a tool call and its result, an LLM answer.
                call = agentstore.tool_called("search", {"q": f"query {i}"})
                chunk += [
                    agentstore.user_message(f"step {i}"),
                    call,
                    agentstore.tool_result(
                        "search", result=[i, i + 1], call_id=call.metadata.call_id, duration_ms=40
                    ),
                    agentstore.llm_response(
                        "gpt-4o", f"answer {i}", tokens_in=300, tokens_out=40, cost_usd=0.001
                    ),
                ]
            await store.append_many(session.id, chunk)
        return session.id


def _run(args: list[str]) -> tuple[float, int]:
    """Run the CLI to /dev/null; return (seconds, max RSS in MiB)."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen([AGENTSTORE, *args], stdout=devnull, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"agentstore {' '.join(args)} failed: {err.decode()}")
    return elapsed, usage.ru_maxrss // 1024


def main() -> None:
    """Build the data directories if needed, then time each command (best of N)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    many = DATA / f"many-{opts.sessions}"
    long = DATA / f"long-{opts.events}-v2"
    if opts.build:
        anyio.run(_build_many, many, opts.sessions)
        anyio.run(_build_long, long, opts.events)
        return
    if not many.exists() or not long.exists():
        # In a child process: a child's max RSS counts what it inherited at fork time,
        # so this process must stay small for the numbers below to mean anything.
        print(f"building {many} and {long} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "bench.cli", "--build", *sys.argv[1:]], check=True)
    cases = [
        ("startup (--version)", ["--version"]),
        (f"sessions ({opts.sessions:,} sessions, shows 50)", ["--data-dir", str(many), "sessions"]),
        (
            f"sessions -n 10 -f json ({opts.sessions:,})",
            ["--data-dir", str(many), "sessions", "-n", "10", "-f", "json"],
        ),
        (
            f"replay --limit 20 ({opts.events:,} events)",
            ["--data-dir", str(long), "replay", "long", "--limit", "20"],
        ),
        (
            f"replay --from-seq {opts.events - 19} (last 20)",
            ["--data-dir", str(long), "replay", "long", "--from-seq", str(opts.events - 19)],
        ),
        (
            "replay --type tool_called --limit 20",
            ["--data-dir", str(long), "replay", "long", "-t", "tool_called", "-n", "20"],
        ),
        (f"replay, whole timeline ({opts.events:,})", ["--data-dir", str(long), "replay", "long"]),
        (
            f"replay -f jsonl, whole ({opts.events:,})",
            ["--data-dir", str(long), "replay", "long", "-f", "jsonl"],
        ),
        (
            f"replay -f json, whole ({opts.events:,})",
            ["--data-dir", str(long), "replay", "long", "-f", "json"],
        ),
        (f"stats ({opts.events:,})", ["--data-dir", str(long), "stats", "long"]),
    ]
    print(f"| command | best of {opts.repeat} | max RSS |")
    print("| --- | ---: | ---: |")
    for label, args in cases:
        runs = [_run(args) for _ in range(opts.repeat)]
        best = min(seconds for seconds, _ in runs)
        rss = max(mib for _, mib in runs)
        print(f"| `{label}` | {best * 1000:,.0f} ms | {rss} MiB |", flush=True)


if __name__ == "__main__":
    main()

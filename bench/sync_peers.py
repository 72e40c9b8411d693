"""`python -m bench.sync_peers [--rounds 3] [--n 500] [--write bench/RESULTS.md]`.

A durable append from a plain thread: `SyncStore.append` on a file store (durability
`fsync`, one session, sequential) against LangGraph's sync `SqliteSaver.put`
(`synchronous=FULL`, measured by the peers' worker in `bench/.venv-peers`), with the async
`Store.append` of the same kind beside it, interleaved round by round. The ratios are
per round (same minute), then the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

import agentstore
from agentstore import EventType, new_event
from bench.__main__ import DATA, Peers
from bench._timing import measure, measure_async

__all__ = ["main"]

MARK = "<!-- sync-peers -->"


def _payload(i: int) -> dict[str, Any]:
    return {"tool": "search_flights", "args": {"from": "AMS", "to": "LIS", "n": i}}


def _sync_store(base: Path, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=base) as tmp, agentstore.open_sync(tmp) as store:
        sid = store.create_session().id

        def op(i: int) -> None:
            store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

        return measure("SyncStore.append", op, n, warmup=20)


def _async_store(base: Path, n: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            async with agentstore.open(tmp) as store:
                sid = (await store.create_session()).id

                async def op(i: int) -> None:
                    await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

                return await measure_async("Store.append", op, n, warmup=20)

    return asyncio.run(run())


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    peers = Peers()
    sync_r: list[float] = []
    async_r: list[float] = []
    rates: dict[str, list[float]] = {"SyncStore": [], "Store": [], "SqliteSaver": []}
    try:
        for _ in range(args.rounds):
            rows = peers.call("append_durable", n=args.n, base=str(DATA))
            lg = next((r for r in rows if r.get("system") == "langgraph SqliteSaver.put"), None)
            sync = _sync_store(DATA, args.n)
            aio = _async_store(DATA, args.n)
            if lg is None or "error" in lg:
                raise SystemExit(f"no SqliteSaver.put figure from the peers: {lg}")
            sync_r.append(sync["ops_per_s"] / lg["ops_per_s"])
            async_r.append(aio["ops_per_s"] / lg["ops_per_s"])
            for key, row in (("SyncStore", sync), ("Store", aio), ("SqliteSaver", lg)):
                rates[key].append(row["ops_per_s"])
            print(f"round: sync {sync_r[-1]:.2f}x, async {async_r[-1]:.2f}x", flush=True)
    finally:
        peers.close()
    lines = [
        MARK,
        "## Durable append from a plain thread vs LangGraph `SqliteSaver.put`",
        "",
        f"`python -m bench.sync_peers`: one session, sequential, {args.n} appends per round, "
        f"{args.rounds} rounds interleaved; ratio = agentstore ops/s ÷ SqliteSaver ops/s in "
        "the same round, median over rounds (above 1: agentstore faster).",
        "",
        "| agentstore | ops/s (median) | vs `SqliteSaver.put` |",
        "|---|---:|---:|",
        f"| `SyncStore.append` (file, fsync) | {statistics.median(rates['SyncStore']):,.0f} "
        f"| {statistics.median(sync_r):.2f}x |",
        f"| `Store.append` (file, fsync) | {statistics.median(rates['Store']):,.0f} "
        f"| {statistics.median(async_r):.2f}x |",
        f"| *`SqliteSaver.put` itself* | {statistics.median(rates['SqliteSaver']):,.0f} | 1 |",
        MARK,
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        text = args.write.read_text() if args.write.exists() else ""
        if text.count(MARK) >= 2:
            head, _, rest = text.partition(MARK)
            _, _, tail = rest.partition(MARK + "\n")
            text = head + section + tail
        else:
            text = text.rstrip("\n") + "\n\n" + section
        args.write.write_text(text)


if __name__ == "__main__":
    main()

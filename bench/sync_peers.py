"""`python -m bench.sync_peers [--rounds 5] [--n 500] [--threads 8] [--write bench/RESULTS.md]`.

A durable append from a plain thread: `SyncStore.append` on a file store (durability
`fsync`, one session, sequential) against the sync SQLite peers: LangGraph's
`SqliteSaver.put` (`synchronous=FULL`) and eventsourcing's SQLite recorder (measured by the
peers' worker in `bench/.venv-peers`), and a raw SQLite WAL `synchronous=FULL` insert loop.
Beside it: the same `SyncStore.append` forced through its event loop (the portal path it
took before it appended on the caller's thread: the A/B), the async `Store.append`, and,
with `--threads`, N threads appending to N sessions through one `SyncStore` both ways.
Everything is interleaved round by round (the order rotates); the ratios are per round
(same minute), then the median, with the spread over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import agentstore
from agentstore import EventType, new_event
from agentstore.backends.file import FileBackend
from bench.__main__ import DATA, Peers
from bench._timing import measure, measure_async
from bench.raw import sqlite_wal_full

__all__ = ["main"]

MARK = "<!-- sync-peers -->"
LG = "langgraph SqliteSaver.put"
ES = "eventsourcing SQLite (raw recorder)"
SQ = "raw SQLite WAL, synchronous=FULL, 1 insert/txn"


class _PortalOnly(FileBackend):
    """The file backend with appends through the store's loop (SyncStore before issue 17)."""

    appends_on_caller_thread: ClassVar[bool] = False


def _payload(i: int) -> dict[str, Any]:
    return {"tool": "search_flights", "args": {"from": "AMS", "to": "LIS", "n": i}}


def _sync_store(base: Path, n: int, *, portal: bool, cached: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        backend = _PortalOnly(tmp) if portal else FileBackend(tmp)
        with agentstore.open_sync(backend) as store:
            sid = store.create_session().id
            if cached:
                store.get_state(sid)  # the state is cached: every append folds into it

            def op(i: int) -> None:
                store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

            name = "SyncStore.append" + (" (portal)" if portal else "")
            return measure(name, op, n, warmup=20)


def _sync_threads(base: Path, n: int, threads: int, *, portal: bool) -> dict[str, Any]:
    """`threads` threads, each appending n events to its own session, one `SyncStore`."""
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        backend = _PortalOnly(tmp) if portal else FileBackend(tmp)
        with agentstore.open_sync(backend) as store:
            sids = [store.create_session().id for _ in range(threads)]
            start = threading.Barrier(threads + 1)

            def work(sid: str) -> None:
                start.wait()
                for i in range(n):
                    store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

            pool = [threading.Thread(target=work, args=(sid,)) for sid in sids]
            for thread in pool:
                thread.start()
            start.wait()
            began = time.perf_counter()
            for thread in pool:
                thread.join()
            wall = time.perf_counter() - began
    return {"ops_per_s": threads * n / wall}


def _async_store(base: Path, n: int) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(dir=base) as tmp:
            async with agentstore.open(tmp) as store:
                sid = (await store.create_session()).id

                async def op(i: int) -> None:
                    await store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

                return await measure_async("Store.append", op, n, warmup=20)

    return asyncio.run(run())


def _fine(base: Path, chunks: int, chunk: int, durability: str) -> dict[str, list[float]]:
    """Both `SyncStore` paths and raw SQLite open at once, `chunk` appends each in turn.

    On a shared disk whose speed drifts from one second to the next, chunks of tens of
    milliseconds side by side compare far better than runs a few seconds apart.
    """
    line = b'{"tool":"search_flights","args":{"from":"AMS","to":"LIS","n":1}}\n'
    out: dict[str, list[float]] = {"inline": [], "portal": [], "sqlite": []}
    with (
        tempfile.TemporaryDirectory(dir=base) as tmp,
        agentstore.open_sync(FileBackend(f"{tmp}/a", durability=durability)) as inline,
        agentstore.open_sync(_PortalOnly(f"{tmp}/b", durability=durability)) as portal,
    ):
        conn = sqlite3.connect(f"{tmp}/raw.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'fsync' else 'OFF'}")
        conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body BLOB)")
        sids = {"inline": inline.create_session().id, "portal": portal.create_session().id}

        def store_op(store: agentstore.SyncStore, sid: str) -> Callable[[int], None]:
            return lambda i: store.append(sid, new_event(EventType.TOOL_CALLED, _payload(i)))

        def sqlite_op(i: int) -> None:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO events (body) VALUES (?)", (line,))
            conn.execute("COMMIT")

        ops = {
            "inline": store_op(inline, sids["inline"]),
            "portal": store_op(portal, sids["portal"]),
            "sqlite": sqlite_op,
        }
        names = list(ops)
        for c in range(chunks + 1):
            for name in names[c % 3 :] + names[: c % 3]:
                began = time.perf_counter()
                for i in range(chunk):
                    ops[name](i)
                if c:  # the first chunk of each warms up
                    out[name].append(chunk / (time.perf_counter() - began))
        conn.close()
    return out


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--fine", type=int, default=40, help="chunks of the fine A/B (0: none)")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    peers = Peers()
    line = b'{"tool":"search_flights","args":{"from":"AMS","to":"LIS","n":1}}\n'
    rates: dict[str, list[float]] = {}
    jobs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("SyncStore", lambda: _sync_store(DATA, args.n, portal=False)),
        ("SyncStore (portal)", lambda: _sync_store(DATA, args.n, portal=True)),
        ("SyncStore, cached", lambda: _sync_store(DATA, args.n, portal=False, cached=True)),
        ("Store", lambda: _async_store(DATA, args.n)),
        (SQ, lambda: sqlite_wal_full(DATA, line, args.n)),
    ]
    if args.threads:
        per = max(args.n // args.threads, 20)
        jobs += [
            ("threads", lambda: _sync_threads(DATA, per, args.threads, portal=False)),
            ("threads (portal)", lambda: _sync_threads(DATA, per, args.threads, portal=True)),
        ]
    try:
        for r in range(args.rounds):
            got: dict[str, float] = {}
            rows = peers.call("append_durable", n=args.n, base=str(DATA))
            for row in rows:
                if row.get("system") in (LG, ES) and "error" not in row:
                    got[row["system"]] = row["ops_per_s"]
            if LG not in got:
                raise SystemExit(f"no SqliteSaver.put figure from the peers: {rows}")
            for name, job in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
                got[name] = job()["ops_per_s"]
            for name, value in got.items():
                rates.setdefault(name, []).append(value)
            print(
                f"round {r + 1}: SyncStore {got['SyncStore'] / got[LG]:.2f}x SqliteSaver, "
                f"portal {got['SyncStore (portal)'] / got[LG]:.2f}x, "
                f"caller's thread ÷ portal {got['SyncStore'] / got['SyncStore (portal)']:.2f}x",
                flush=True,
            )
    finally:
        peers.close()
    fine = {d: _fine(DATA, args.fine, 20, d) for d in ("fsync", "flush")} if args.fine else {}
    section = _section(args, rates, fine)
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


def _section(
    args: argparse.Namespace, rates: dict[str, list[float]], fine: dict[str, dict[str, list[float]]]
) -> str:
    def ratio(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rates[a], rates[b], strict=True)]

    def row(label: str, key: str) -> str:
        cells = [f"{statistics.median(rates[key]):,.0f}"]
        for peer in (LG, ES, SQ):
            cells.append(_spread(ratio(key, peer)) if peer in rates else "n/a")
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        MARK,
        "## Durable append from a plain thread vs the sync SQLite peers",
        "",
        f"`python -m bench.sync_peers`: one session, sequential, {args.n} appends per round, "
        f"{args.rounds} rounds interleaved (the order rotates); ratio = agentstore ops/s ÷ the "
        "peer's ops/s in the same round, median over rounds (lowest-highest in brackets; "
        "above 1: agentstore faster). No `get_state` first (as in earlier runs), so no "
        "append folds into a cached state, except in the row that says so.",
        "",
        f"| agentstore (file, fsync) | ops/s | vs `{LG}` | vs {ES} | vs {SQ} |",
        "|---|---:|---:|---:|---:|",
        row("`SyncStore.append`, on the caller's thread", "SyncStore"),
        row("`SyncStore.append` through its event loop (before)", "SyncStore (portal)"),
        row("`SyncStore.append`, caller's thread, state cached", "SyncStore, cached"),
        row("`Store.append` (async)", "Store"),
        "",
        "Peers' own rates (median ops/s): "
        + ", ".join(f"{p} {statistics.median(rates[p]):,.0f}" for p in (LG, ES, SQ) if p in rates)
        + ".",
        "",
        "A/B, same rounds: `SyncStore.append` on the caller's thread ÷ through its loop = "
        f"{_spread(ratio('SyncStore', 'SyncStore (portal)'))}.",
    ]
    if LG in rates:
        # The issue names the sync path for this target ("see SyncStore").
        vs_lg = statistics.median(ratio("SyncStore", LG))
        verdict = "met" if vs_lg >= 1.0 else "not met"
        lines += [
            "",
            "Issue 17's target (a durable append on one session, sync, >= 1.0x "
            f"`{LG}` in the same run): `SyncStore.append` {vs_lg:.2f}x: **{verdict}**.",
        ]
    if "threads" in rates:
        lines += [
            "",
            f"{args.threads} threads, each on its own session, one `SyncStore`: "
            f"{statistics.median(rates['threads']):,.0f} appends/s on the caller's threads, "
            f"{statistics.median(rates['threads (portal)']):,.0f} through the loop "
            f"({_spread(ratio('threads', 'threads (portal)'))}).",
        ]
    for durability, got in fine.items():
        inline, portal, sq = got["inline"], got["portal"], got["sqlite"]
        lines += [
            "",
            f"Fine A/B, durability `{durability}`: {args.fine} chunks of 20 appends each, the "
            "three side by side, one after another: on the caller's thread "
            f"{statistics.median(inline):,.0f}/s, through the loop "
            f"{statistics.median(portal):,.0f}/s, raw SQLite WAL synchronous="
            f"{'FULL' if durability == 'fsync' else 'OFF'} {statistics.median(sq):,.0f}/s; "
            "per chunk, caller's thread ÷ loop "
            f"{_spread([a / b for a, b in zip(inline, portal, strict=True)])}, "
            f"caller's thread ÷ SQLite {_spread([a / b for a, b in zip(inline, sq, strict=True)])}.",
        ]
    lines.append(MARK)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

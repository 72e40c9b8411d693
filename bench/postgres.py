"""`python -m bench.postgres [--quick] [--rounds N] [--out bench/RESULTS.md]`: agentstore on PostgreSQL
against LangGraph's AsyncPostgresSaver and eventsourcing's PostgreSQL recorder, and the
asyncpg / psycopg 3 comparison behind the choice of driver.

All on the same server (`AGENTSTORE_BENCH_POSTGRES_URL`, default the machine's
`postgresql://postgres@127.0.0.1:5432/postgres`), in a database made for the run and
dropped after it. agentstore runs in this interpreter; the peers and the driver comparison
run in `bench/.venv-peers` (`python -m bench.postgres_peers`), round by round
interleaved with agentstore's. Rows: appends by 1, 8 and 64 concurrent writers (each on
its own session / thread / aggregate), a batch of 100, a replay of 10,000 events. The
section "PostgreSQL" of RESULTS.md is replaced with the figures (the best of the rounds).

Quick A/B of agentstore's own settings: `--no-peers --variant 'notify=false' --variant
'snapshot_interval=0'` runs each variant beside the defaults in every round and prints the
ratios (RESULTS.md is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.postgres_peers import METADATA, PAYLOAD, WRITERS, Row
from bench.postgres_peers import timed as _timed

HERE = Path(__file__).resolve().parent
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
SERVER = os.environ.get(
    "AGENTSTORE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _db_url(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}", query=""))


# --- agentstore -----------------------------------------------------------------------------


async def timed(system: str, row: str, units: int, work: Callable[[], Awaitable[Any]]) -> Row:
    """`postgres_peers.timed`, plus this process's CPU time per unit (`client_cpu_us`): the
    client's share of the row (the rest is the server's time and the waits), printed by
    `client_lines`. asyncpg runs in this thread, so process time is the client's."""
    start = time.process_time()
    out = await _timed(system, row, units, work)
    out["client_cpu_us"] = (time.process_time() - start) / units * 1e6
    return out


def client_lines(best: dict[tuple[str, str], Row]) -> str:
    """A line per agentstore row: µs per unit of wall time and of client CPU in it."""
    out = []
    for (system, name), row in sorted(best.items()):
        cpu, per_s = row.get("client_cpu_us"), row.get("per_s")
        if system.startswith("agentstore") and cpu is not None and per_s:
            wall = 1e6 / per_s
            out.append(
                f"{system}, {name}: {wall:.1f} µs a unit, {cpu:.1f} µs of it client CPU "
                f"({cpu / wall:.0%}); the rest is the server and waiting"
            )
    return "\n".join(out)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`notify=false&snapshot_interval=0` -> (that text, its options)."""
    options = dict(part.split("=", 1) for part in text.split("&") if part)
    return text, options


def _open_args(options: dict[str, str]) -> tuple[str, dict[str, int]]:
    """Split variant options into URL query text and `agentstore.open` keywords."""
    kwargs = {k: int(v) for k, v in options.items() if k == "snapshot_interval"}
    query = "".join(f"&{k}={v}" for k, v in options.items() if k not in kwargs)
    return query, kwargs


async def agentstore_rows(
    url: str, n: int, system: str = "agentstore", options: dict[str, str] | None = None
) -> list[Row]:
    """agentstore's rows: one store (its pool sized to the writers), as an app would run.

    `options` (a `--variant`) adds URL options (`notify=false`) or `snapshot_interval`.
    """
    import agentstore
    from agentstore import Metadata, new_event

    query, kwargs = _open_args(options or {})
    rows: list[Row] = []
    meta = Metadata(**METADATA)
    for writers in WRITERS:
        schema = f"a_{secrets.token_hex(4)}"
        pool = min(writers, 32)
        async with agentstore.open(
            f"{url}?schema={schema}&pool_max_size={pool}{query}", pricing=False, **kwargs
        ) as store:
            sessions = [(await store.create_session()).id for _ in range(writers)]
            per = max(n // writers, 20)

            async def writer(sid: str, per: int = per) -> None:
                for _ in range(per):
                    await store.append(sid, new_event("tool_result", PAYLOAD, meta))

            async def run(sessions: list[str] = sessions) -> None:
                await asyncio.gather(*(writer(sid) for sid in sessions))

            rows.append(await timed(system, f"append, {writers} writers", per * writers, run))
    rows.append(await _followed_row(url, n, system, query, kwargs))
    schema = f"a_{secrets.token_hex(4)}"
    async with agentstore.open(f"{url}?schema={schema}{query}", pricing=False, **kwargs) as store:
        sid = (await store.create_session()).id
        batches = max(n // 100, 10)

        async def many() -> None:
            for _ in range(batches):
                await store.append_many(
                    sid, [new_event("tool_result", PAYLOAD, meta) for _ in range(100)]
                )

        rows.append(await timed(system, "append_many of 100", batches * 100, many))
        big = (await store.create_session()).id
        for _ in range(100):
            await store.append_many(
                big, [new_event("tool_result", PAYLOAD, meta) for _ in range(100)]
            )

        async def replay() -> None:
            assert len(await store.replay(big)) == 10_000

        rows.append(await timed(system, "replay of 10,000", 10_000, replay))
    return rows


async def _followed_row(url: str, n: int, system: str, query: str, kwargs: dict[str, int]) -> Row:
    """One writer again, on a session a follower holds a lease on (set here as a follower's
    `wait_for_append` sets it): every append is then followed by a NOTIFY, as every insert
    of eventsourcing's recorder is. The follower's own reads are left out, as the peers'
    rows have no reader either."""
    import agentstore
    from agentstore import Metadata, new_event

    meta = Metadata(**METADATA)
    schema = f"a_{secrets.token_hex(4)}"
    target = f"{url}?schema={schema}&pool_max_size=1{query}"
    async with agentstore.open(target, pricing=False, **kwargs) as store:
        sid = (await store.create_session()).id
        await store.backend.db.execute(  # type: ignore[attr-defined]
            f"UPDATE \"{schema}\".sessions SET followed_until = now() + interval '1 hour' "
            "WHERE id = $1",
            sid,
        )
        per = max(n, 20)

        async def run() -> None:
            for _ in range(per):
                await store.append(sid, new_event("tool_result", PAYLOAD, meta))

        return await timed(system, "append, 1 writers, followed", per, run)


# --- the runner -----------------------------------------------------------------------------


def _best(rounds: list[list[Row]]) -> dict[tuple[str, str], Row]:
    best: dict[tuple[str, str], Row] = {}
    for rows in rounds:
        for row in rows:
            key = (row["system"], row["row"])
            if "per_s" in row and (
                "per_s" not in best.get(key, {}) or row["per_s"] > best[key]["per_s"]
            ):
                best[key] = row
            best.setdefault(key, row)
    return best


def _section(best: dict[tuple[str, str], Row], rounds: int, n: int) -> str:
    """The "## PostgreSQL" section of RESULTS.md from the best figure of each row."""
    import asyncpg

    versions = next((r["versions"] for r in best.values() if r["system"] == "versions"), {})
    server = asyncio.run(_server_version())
    row_names = [f"append, {w} writers" for w in WRITERS] + [
        "append_many of 100",
        "replay of 10,000",
    ]
    peers = ["LangGraph AsyncPostgresSaver", "eventsourcing (PostgreSQL)"]
    out = [
        "## PostgreSQL",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores "
        f"({platform.system()} {platform.release()}), Python {platform.python_version()}, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; {server} on the "
        "same machine (client and server share the cores: every figure is CPU-bound), fsync on. "
        f"Best of {rounds} interleaved rounds, about {n} operations per row; events/s (higher is better). "
        f"asyncpg {asyncpg.__version__}; peers: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("asyncpg",))
        + ".",
        "",
        "| row | agentstore | " + " | ".join(peers) + " |",
        "|---|---|" + "---|" * len(peers),
    ]
    for name in row_names:
        ours = best.get(("agentstore", name), {}).get("per_s")
        cells = [f"{ours:,.0f}" if ours else "n/a"]
        for peer in peers:
            theirs = best.get((peer, name), {}).get("per_s")
            if theirs:
                cells.append(f"{theirs:,.0f} ({ours / theirs:.1f}x)" if ours else f"{theirs:,.0f}")
            else:
                cells.append("n/a")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    errors = [r for r in best.values() if "error" in r]
    out += [
        "",
        "Each writer appends to its own session (LangGraph: its own thread with its own saver and "
        "connection; eventsourcing: its own aggregate, one thread each, sharing a pool). agentstore: one "
        "store with its defaults (a snapshot every 100 events; a NOTIFY after an append only to a "
        "session a follower holds a lease on, and no one follows in these rows), its pool sized "
        "to the writers (at most 32). On a session a follower holds a lease on (each append then "
        "followed by a NOTIFY; the follower's reads left out) one writer does "
        + _fmt(best.get(("agentstore", "append, 1 writers, followed"), {}).get("per_s"))
        + " events/s. Every system commits each append with `synchronous_commit` on "
        "(one WAL flush per commit, shared by concurrent commits). eventsourcing is its "
        "`PostgresApplicationRecorder`, what `Application.save` writes through (it feeds followers "
        "through its notification log, and NOTIFYs on every insert whether or not anyone listens), "
        "with the faster of its two settings per row ("
        + ", ".join(
            f"{name}: {best[('eventsourcing (PostgreSQL)', name)].get('setting', 'default')}"
            for name in row_names[:-1]
            if ("eventsourcing (PostgreSQL)", name) in best
        )
        + "; `default` is a pipelined transaction with `LOCK TABLE ... IN EXCLUSIVE MODE`, "
        "`functions` is `POSTGRES_ENABLE_DB_FUNCTIONS`). Its bare aggregate recorder (one INSERT, no "
        "notification log; what `Application` keeps snapshots in) does "
        + " / ".join(
            _fmt(best.get(("eventsourcing aggregate recorder", name), {}).get("per_s"))
            for name in row_names[:-1]
        )
        + " events/s on the four append rows. `append_many of 100`: LangGraph's closest is "
        "`aput_writes` of 100 writes. `replay of 10,000`: LangGraph lists a thread's 10,000 checkpoints "
        "(`alist`), eventsourcing `select_events` of one aggregate with each event's state decoded "
        "(`json.loads`, as its transcoder would); without decoding it reads "
        + _fmt(
            best.get(("eventsourcing (PostgreSQL)", "replay of 10,000 (undecoded)"), {}).get(
                "per_s"
            )
        )
        + " events/s.",
        "",
        "### Drivers: asyncpg and psycopg 3 on agentstore's own statements",
        "",
        "| row | asyncpg | psycopg 3 (binary) |",
        "|---|---|---|",
    ]
    for name in (
        "append, 1 writers",
        "append, 8 writers",
        "append_many of 100",
        "replay of 10,000",
    ):
        a = best.get(("driver asyncpg", name), {}).get("per_s")
        p = best.get(("driver psycopg 3", name), {}).get("per_s")
        out.append(f"| {name} | {a:,.0f} | {p:,.0f} |" if a and p else f"| {name} | n/a | n/a |")
    if errors:
        out += ["", "Errors: " + "; ".join(f"{r['system']}: {r['error']}" for r in errors)]
    return "\n".join(out) + "\n"


def variants_table(best: dict[tuple[str, str], Row], variants: list[str]) -> str:
    """agentstore's rows with each `--variant` beside its defaults (ratio: variant/defaults)."""
    names = [f"append, {w} writers" for w in WRITERS] + [
        "append, 1 writers, followed",
        "append_many of 100",
        "replay of 10,000",
    ]
    out = [
        "| row | agentstore | " + " | ".join(f"`{v}`" for v in variants) + " |",
        "|---|---|" + "---|" * len(variants),
    ]
    for name in names:
        ours = best.get(("agentstore", name), {}).get("per_s")
        cells = [_fmt(ours)]
        for v in variants:
            theirs = best.get((f"agentstore {v}", name), {}).get("per_s")
            ratio = f" ({theirs / ours:.2f}x)" if theirs and ours else ""
            cells.append(_fmt(theirs) + ratio)
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _fmt(value: float | None) -> str:
    return f"{value:,.0f}" if value else "n/a"


async def _server_version() -> str:
    import asyncpg

    conn = await asyncpg.connect(SERVER)
    try:
        return "PostgreSQL " + str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


def write_section(path: Path, section: str) -> None:
    """Replace (or add) the "## PostgreSQL" section of RESULTS.md."""
    text = path.read_text() if path.exists() else "# agentstore benchmarks\n"
    start = text.find("\n## PostgreSQL\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + (text[end:] if end != -1 else "")
    path.write_text(text)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one small round")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 1 quick, else 3)")
    parser.add_argument(
        "--no-peers", action="store_true", help="agentstore only (RESULTS.md is left alone)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="also run agentstore with these options, in every round beside its defaults, "
        "e.g. 'notify=false' or 'snapshot_interval=0&notify=false' (URL options, plus "
        "snapshot_interval); prints a table of ratios, RESULTS.md is left alone",
    )
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    rounds, n = (1, 400) if args.quick else (3, 2000)
    rounds = args.rounds or rounds
    database = f"agentstore_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    url = _db_url(SERVER, database)
    peers = None
    if not args.no_peers and PEERS_PY.exists():
        peers = subprocess.Popen(
            [str(PEERS_PY), "-m", "bench.postgres_peers"],
            cwd=HERE.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
    elif not args.no_peers:
        print(f"! no peers venv at {PEERS_PY.parent.parent}: run `make bench`", file=sys.stderr)
    results: list[list[Row]] = []
    try:
        for r in range(rounds):
            # Defaults and variants alternate which goes first, round by round.
            runs = [("agentstore", {})] + [(f"agentstore {v}", o) for v, o in variants]
            for system, options in runs if r % 2 == 0 else runs[::-1]:
                print(f"postgres round {r + 1}/{rounds}: {system}", file=sys.stderr)
                results.append(asyncio.run(agentstore_rows(url, n, system, options)))
            if peers is not None and peers.stdin is not None and peers.stdout is not None:
                print(f"postgres round {r + 1}/{rounds}: peers and drivers", file=sys.stderr)
                peers.stdin.write(json.dumps({"url": url, "n": n}) + "\n")
                peers.stdin.flush()
                results.append(json.loads(peers.stdout.readline() or "[]"))
    finally:
        if peers is not None and peers.stdin is not None:
            peers.stdin.close()
            peers.wait(timeout=60)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    best = _best(results)
    print(client_lines(best), file=sys.stderr)
    if args.no_peers or variants:  # a partial run: printed, not recorded
        print(variants_table(best, [label for label, _ in variants]))
        if peers is not None:
            print(_section(best, rounds, n))
        return
    section = _section(best, rounds, n)
    write_section(args.out, section)
    print(section)


if __name__ == "__main__":
    main()

"""`python -m bench.postgres [--quick] [--out bench/RESULTS.md]`: agentstore on PostgreSQL
against LangGraph's AsyncPostgresSaver and eventsourcing's PostgreSQL recorder, and the
asyncpg / psycopg 3 comparison behind the choice of driver.

All on the same server (`AGENTSTORE_BENCH_POSTGRES_URL`, default the machine's
`postgresql://postgres@127.0.0.1:5432/postgres`), in a database made for the run and
dropped after it. agentstore runs in this interpreter; the peers and the driver comparison
run in `bench/.venv-peers` (`python -m bench.postgres --worker`), round by round
interleaved with agentstore's. Rows: appends by 1, 8 and 64 concurrent writers (each on
its own session / thread / aggregate), a batch of 100, a replay of 10,000 events. The
section "PostgreSQL" of RESULTS.md is replaced with the figures (the best of the rounds).
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
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
SERVER = os.environ.get(
    "AGENTSTORE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WRITERS = (1, 8, 64)

# About 560 bytes of payload and 80 of metadata: the event the design notes measured.
PAYLOAD = {
    "tool": "search_flights",
    "arguments": {"from": "BER", "to": "MUC", "date": "2026-12-01", "passengers": 2},
    "result": [{"flight": f"LH{2000 + i}", "price": 99.5 + i, "seats": 9} for i in range(6)],
}
METADATA = {"tool_name": "search_flights", "duration_ms": 412, "worker_id": "worker-7"}

Row = dict[str, Any]


def _db_url(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}", query=""))


async def _timed(system: str, row: str, units: int, work: Callable[[], Awaitable[Any]]) -> Row:
    start = time.perf_counter()
    await work()
    wall = time.perf_counter() - start
    return {"system": system, "row": row, "per_s": units / wall}


# --- agentstore -----------------------------------------------------------------------------


async def agentstore_rows(url: str, n: int) -> list[Row]:
    """agentstore's rows: one store (its pool sized to the writers), as an app would run."""
    import agentstore
    from agentstore import Metadata, new_event

    rows: list[Row] = []
    meta = Metadata(**METADATA)
    for writers in WRITERS:
        schema = f"a_{secrets.token_hex(4)}"
        pool = min(writers, 32)
        async with agentstore.open(
            f"{url}?schema={schema}&pool_max_size={pool}", pricing=False
        ) as store:
            sessions = [(await store.create_session()).id for _ in range(writers)]
            per = max(n // writers, 20)

            async def writer(sid: str, per: int = per) -> None:
                for _ in range(per):
                    await store.append(sid, new_event("tool_result", PAYLOAD, meta))

            async def run(sessions: list[str] = sessions) -> None:
                await asyncio.gather(*(writer(sid) for sid in sessions))

            rows.append(
                await _timed("agentstore", f"append, {writers} writers", per * writers, run)
            )
    schema = f"a_{secrets.token_hex(4)}"
    async with agentstore.open(f"{url}?schema={schema}", pricing=False) as store:
        sid = (await store.create_session()).id
        batches = max(n // 100, 10)

        async def many() -> None:
            for _ in range(batches):
                await store.append_many(
                    sid, [new_event("tool_result", PAYLOAD, meta) for _ in range(100)]
                )

        rows.append(await _timed("agentstore", "append_many of 100", batches * 100, many))
        big = (await store.create_session()).id
        for _ in range(100):
            await store.append_many(
                big, [new_event("tool_result", PAYLOAD, meta) for _ in range(100)]
            )

        async def replay() -> None:
            assert len(await store.replay(big)) == 10_000

        rows.append(await _timed("agentstore", "replay of 10,000", 10_000, replay))
    return rows


# --- the peers (run in bench/.venv-peers) ---------------------------------------------------


async def langgraph_rows(url: str, n: int) -> list[Row]:
    """LangGraph: `aput` of a checkpoint carrying the event, one saver per writer."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.base.id import uuid6
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    rows: list[Row] = []
    async with AsyncPostgresSaver.from_conn_string(url) as setup:
        await setup.setup()

    def checkpoint(step: int) -> Any:
        cp = empty_checkpoint()
        cp["id"] = str(uuid6(clock_seq=step))
        cp["channel_values"] = {"event": PAYLOAD}
        cp["channel_versions"] = {"event": step}
        return cp

    for writers in WRITERS:
        per = max(n // writers, 20)

        async def writer(per: int = per) -> None:
            async with AsyncPostgresSaver.from_conn_string(url) as saver:
                config: Any = {
                    "configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}
                }
                for step in range(per):
                    config = await saver.aput(
                        config, checkpoint(step), {"step": step}, {"event": step}
                    )

        async def run(writers: int = writers, writer: Any = writer) -> None:
            await asyncio.gather(*(writer() for _ in range(writers)))

        rows.append(
            await _timed(
                "LangGraph AsyncPostgresSaver", f"append, {writers} writers", per * writers, run
            )
        )
    async with AsyncPostgresSaver.from_conn_string(url) as saver:
        batches = max(n // 100, 10)
        config = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
        config = await saver.aput(config, checkpoint(0), {}, {})

        async def many() -> None:
            for b in range(batches):
                writes = [(f"event{i}", PAYLOAD) for i in range(100)]
                await saver.aput_writes(config, writes, task_id=f"task-{b}")

        rows.append(
            await _timed("LangGraph AsyncPostgresSaver", "append_many of 100", batches * 100, many)
        )
        thread = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
        cfg: Any = thread
        for step in range(10_000):
            cfg = await saver.aput(cfg, checkpoint(step), {}, {"event": step})

        async def replay() -> None:
            got = [c async for c in saver.alist(thread)]
            assert len(got) == 10_000

        rows.append(
            await _timed("LangGraph AsyncPostgresSaver", "replay of 10,000", 10_000, replay)
        )
    return rows


def eventsourcing_rows(url: str, n: int) -> list[Row]:
    """eventsourcing: its PostgreSQL aggregate recorder's `insert_events` / `select_events`."""
    from concurrent.futures import ThreadPoolExecutor

    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore

    parts = urlsplit(url)
    state = json.dumps({"payload": PAYLOAD, "metadata": METADATA}).encode()

    def recorder(pool: int) -> PostgresAggregateRecorder:
        datastore = PostgresDatastore(
            parts.path.lstrip("/"), parts.hostname or "127.0.0.1", parts.port or 5432,
            parts.username or "postgres", parts.password or "", pool_size=pool, max_overflow=0,
        )  # fmt: skip
        rec = PostgresAggregateRecorder(datastore)
        rec.create_table()
        return rec

    def timed(row: str, units: int, work: Callable[[], Any]) -> Row:
        start = time.perf_counter()
        work()
        return {
            "system": "eventsourcing (PostgreSQL)",
            "row": row,
            "per_s": units / (time.perf_counter() - start),
        }

    rows: list[Row] = []
    for writers in WRITERS:
        rec = recorder(min(writers, 32))
        per = max(n // writers, 20)

        def writer(per: int = per, rec: Any = rec) -> None:
            oid = uuid.uuid4()
            for v in range(1, per + 1):
                rec.insert_events([StoredEvent(oid, v, "bench:Event", state)])

        def run(writers: int = writers, writer: Any = writer) -> None:
            with ThreadPoolExecutor(writers) as pool:
                list(pool.map(lambda _: writer(), range(writers)))

        rows.append(timed(f"append, {writers} writers", per * writers, run))
        rec.datastore.close()
    rec = recorder(1)
    batches = max(n // 100, 10)
    oid = uuid.uuid4()

    def many() -> None:
        for b in range(batches):
            rec.insert_events(
                [StoredEvent(oid, b * 100 + i + 1, "bench:Event", state) for i in range(100)]
            )

    rows.append(timed("append_many of 100", batches * 100, many))
    big = uuid.uuid4()
    for b in range(100):
        rec.insert_events(
            [StoredEvent(big, b * 100 + i + 1, "bench:Event", state) for i in range(100)]
        )

    def replay() -> None:
        assert len(rec.select_events(big)) == 10_000

    rows.append(timed("replay of 10,000", 10_000, replay))
    rec.datastore.close()
    return rows


# The append statement of agentstore/backends/postgres/append.py, on a bare table pair, to
# compare the drivers on exactly our round trips.
_DDL = """
CREATE TABLE IF NOT EXISTS drv_sessions (id text PRIMARY KEY, last_seq bigint NOT NULL DEFAULT 0,
    last_ts timestamptz, prev_ts timestamptz);
CREATE TABLE IF NOT EXISTS drv_events (session_id text NOT NULL, seq bigint NOT NULL, id text NOT NULL,
    type text NOT NULL, ts timestamptz NOT NULL, payload_json text NOT NULL, metadata_json text NOT NULL,
    payload jsonb GENERATED ALWAYS AS (payload_json::jsonb) STORED,
    metadata jsonb GENERATED ALWAYS AS (metadata_json::jsonb) STORED,
    PRIMARY KEY (session_id, seq), UNIQUE (session_id, id));
"""
_APPEND = """
WITH s AS (UPDATE drv_sessions SET last_seq = last_seq + cardinality({ids}::text[]), prev_ts = last_ts,
        last_ts = greatest(last_ts, now()) WHERE id = {sid}
    RETURNING last_seq - cardinality({ids}::text[]) AS base, prev_ts)
INSERT INTO drv_events (session_id, seq, id, type, ts, payload_json, metadata_json)
SELECT {sid}, s.base + u.ord, u.id, u.type, greatest(s.prev_ts, now()), u.p, u.m
FROM s, unnest({ids}::text[], {types}::text[], {ps}::text[], {ms}::text[])
    WITH ORDINALITY AS u(id, type, p, m, ord)
RETURNING seq, ts
"""
_READ = "SELECT seq, id, type, ts, payload_json, metadata_json FROM drv_events WHERE session_id = {sid} ORDER BY seq"


async def driver_rows(url: str, n: int) -> list[Row]:
    """asyncpg and psycopg 3 (async, binary parameters) on agentstore's own statements."""
    import asyncpg
    import orjson
    import psycopg

    p_json, m_json = orjson.dumps(PAYLOAD).decode(), orjson.dumps(METADATA).decode()
    rows: list[Row] = []
    setup = await asyncpg.connect(url)
    await setup.execute(_DDL)

    async def sessions(count: int) -> list[str]:
        ids = [str(uuid.uuid4()) for _ in range(count)]
        await setup.executemany("INSERT INTO drv_sessions (id) VALUES ($1)", [(i,) for i in ids])
        return ids

    a_append = _APPEND.format(sid="$1", ids="$2", types="$3", ps="$4", ms="$5")
    p_append = _APPEND.format(
        sid="%(sid)b", ids="%(ids)b", types="%(types)b", ps="%(ps)b", ms="%(ms)b"
    )

    async def a_writer(sid: str, count: int, size: int) -> None:
        conn = await asyncpg.connect(url)
        for _ in range(count):
            ids = [str(uuid.uuid4()) for _ in range(size)]
            await conn.fetch(
                a_append, sid, ids, ["tool_result"] * size, [p_json] * size, [m_json] * size
            )
        await conn.close()

    async def p_writer(sid: str, count: int, size: int) -> None:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        for _ in range(count):
            ids = [str(uuid.uuid4()) for _ in range(size)]
            args = {
                "sid": sid,
                "ids": ids,
                "types": ["tool_result"] * size,
                "ps": [p_json] * size,
                "ms": [m_json] * size,
            }
            cur = await conn.execute(p_append, args)
            await cur.fetchall()
        await conn.close()

    for name, writer in (("asyncpg", a_writer), ("psycopg 3", p_writer)):
        for writers, size in ((1, 1), (8, 1), (1, 100)):
            ids = await sessions(writers)
            count = max(n // writers // size, 10)

            async def run(
                ids: list[str] = ids, count: int = count, size: int = size, writer: Any = writer
            ) -> None:
                await asyncio.gather(*(writer(sid, count, size) for sid in ids))

            label = f"append, {writers} writers" if size == 1 else "append_many of 100"
            rows.append(await _timed(f"driver {name}", label, count * writers * size, run))
    big = (await sessions(1))[0]
    await a_writer(big, 100, 100)

    async def a_read() -> None:
        conn = await asyncpg.connect(url)
        got = [
            (r[0], r[1], r[2], r[3], orjson.loads(r[4]), orjson.loads(r[5]))
            for r in await conn.fetch(_READ.format(sid="$1"), big)
        ]
        assert len(got) == 10_000
        await conn.close()

    async def p_read() -> None:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        cur = await conn.execute(_READ.format(sid="%s"), (big,), binary=True)
        got = [
            (r[0], r[1], r[2], r[3], orjson.loads(r[4]), orjson.loads(r[5]))
            for r in await cur.fetchall()
        ]
        assert len(got) == 10_000
        await conn.close()

    rows.append(await _timed("driver asyncpg", "replay of 10,000", 10_000, a_read))
    rows.append(await _timed("driver psycopg 3", "replay of 10,000", 10_000, p_read))
    await setup.execute("DROP TABLE drv_events; DROP TABLE drv_sessions")
    await setup.close()
    return rows


def worker() -> None:
    """The peers' side: one JSON command per stdin line, one JSON list of rows per answer."""
    from importlib import metadata

    for line in sys.stdin:
        cmd = json.loads(line)
        url, n = cmd["url"], cmd["n"]
        out: list[Row] = []
        jobs: list[tuple[str, Callable[[str, int], list[Row]]]] = [
            ("LangGraph AsyncPostgresSaver", lambda u, k: asyncio.run(langgraph_rows(u, k))),
            ("eventsourcing (PostgreSQL)", eventsourcing_rows),
            ("drivers", lambda u, k: asyncio.run(driver_rows(u, k))),
        ]
        for name, job in jobs:
            try:
                out.extend(job(url, n))
            except Exception as exc:  # a failing peer gives an error row, not a stopped run
                out.append(
                    {"system": name, "row": "error", "error": f"{type(exc).__name__}: {exc}"}
                )
        versions = {
            p: metadata.version(p)
            for p in ("langgraph-checkpoint-postgres", "eventsourcing", "psycopg", "asyncpg")
        }
        out.append({"system": "versions", "row": "", "versions": versions})
        print(json.dumps(out), flush=True)


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
        f"({platform.system()} {platform.release()}), Python {platform.python_version()}; {server} on the "
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
        "store, its pool sized to the writers (at most 32). `append_many of 100`: LangGraph's closest is "
        "`aput_writes` of 100 writes. `replay of 10,000`: LangGraph lists a thread's 10,000 checkpoints "
        "(`alist`), eventsourcing `select_events` of one aggregate.",
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
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    rounds, n = (1, 400) if args.quick else (3, 2000)
    database = f"agentstore_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    url = _db_url(SERVER, database)
    peers = None
    if PEERS_PY.exists():
        peers = subprocess.Popen(
            [str(PEERS_PY), "-m", "bench.postgres", "--worker"],
            cwd=HERE.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
    else:
        print(f"! no peers venv at {PEERS_PY.parent.parent}: run `make bench`", file=sys.stderr)
    results: list[list[Row]] = []
    try:
        for r in range(rounds):
            print(f"postgres round {r + 1}/{rounds}: agentstore", file=sys.stderr)
            results.append(asyncio.run(agentstore_rows(url, n)))
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
    section = _section(_best(results), rounds, n)
    write_section(args.out, section)
    print(section)


if __name__ == "__main__":
    main()

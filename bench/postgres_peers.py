"""The peers' side of `bench/postgres.py`, run in `bench/.venv-peers` (never the project's venv).

`python -m bench.postgres_peers` reads one JSON command per stdin line (`{"url", "n"}`) and
answers with one JSON list of rows: LangGraph's AsyncPostgresSaver, eventsourcing's PostgreSQL
recorder, and the asyncpg / psycopg 3 comparison on agentstore's own statements. It imports
nothing from agentstore; `bench/postgres.py` imports its workload constants from here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

WRITERS = (1, 8, 64)

# About 560 bytes of payload and 80 of metadata: the event the design notes measured.
PAYLOAD = {
    "tool": "search_flights",
    "arguments": {"from": "BER", "to": "MUC", "date": "2026-12-01", "passengers": 2},
    "result": [{"flight": f"LH{2000 + i}", "price": 99.5 + i, "seats": 9} for i in range(6)],
}
METADATA = {"tool_name": "search_flights", "duration_ms": 412, "worker_id": "worker-7"}

Row = dict[str, Any]


async def timed(system: str, row: str, units: int, work: Callable[[], Awaitable[Any]]) -> Row:
    """Run `work` once; return its throughput in `units` per second as a row."""
    start = time.perf_counter()
    await work()
    wall = time.perf_counter() - start
    return {"system": system, "row": row, "per_s": units / wall}


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
            await timed(
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
            await timed("LangGraph AsyncPostgresSaver", "append_many of 100", batches * 100, many)
        )
        thread = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
        cfg: Any = thread
        for step in range(10_000):
            cfg = await saver.aput(cfg, checkpoint(step), {}, {"event": step})

        async def replay() -> None:
            got = [c async for c in saver.alist(thread)]
            assert len(got) == 10_000

        rows.append(await timed("LangGraph AsyncPostgresSaver", "replay of 10,000", 10_000, replay))
    return rows


def eventsourcing_rows(url: str, n: int) -> list[Row]:
    """eventsourcing: the PostgreSQL application recorder its `Application` writes through.

    `PostgresApplicationRecorder.insert_events` is what `Application.save` runs: like
    agentstore's append it feeds followers (its notification log, LISTEN/NOTIFY). It has
    two settings (`POSTGRES_ENABLE_DB_FUNCTIONS`): a pipelined transaction with `LOCK TABLE
    ... IN EXCLUSIVE MODE` (the default) or one call of a database function; each row
    runs both and keeps the faster, as a user tuning it would. The bare aggregate recorder
    (one INSERT, no notification log: what `Application` uses for snapshots) is measured
    too, as "eventsourcing aggregate recorder", for the notes.
    """
    from concurrent.futures import ThreadPoolExecutor

    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import (
        PostgresAggregateRecorder,
        PostgresApplicationRecorder,
        PostgresDatastore,
    )

    parts = urlsplit(url)
    state = json.dumps({"payload": PAYLOAD, "metadata": METADATA}).encode()
    system = "eventsourcing (PostgreSQL)"

    def recorder(pool: int, kind: str) -> Any:
        datastore = PostgresDatastore(
            parts.path.lstrip("/"), parts.hostname or "127.0.0.1", parts.port or 5432,
            parts.username or "postgres", parts.password or "", pool_size=pool, max_overflow=0,
            enable_db_functions=kind == "functions",
        )  # fmt: skip
        rec: Any
        if kind == "aggregate":
            rec = PostgresAggregateRecorder(datastore, events_table_name="es_aggregate_events")
        else:
            rec = PostgresApplicationRecorder(datastore, events_table_name="es_app_events")
        rec.create_table()
        return rec

    def timed(row: str, units: int, work: Callable[[], Any]) -> float:
        start = time.perf_counter()
        work()
        return units / (time.perf_counter() - start)

    def insert(rec: Any, oid: uuid.UUID, first: int, count: int) -> None:
        rec.insert_events([StoredEvent(oid, first + i, "bench:Event", state) for i in range(count)])

    rows: list[Row] = []

    def best(row: str, figures: dict[str, float]) -> None:
        kind = max(("default", "functions"), key=lambda k: figures[k])
        rows.append({"system": system, "row": row, "per_s": figures[kind], "setting": kind})
        rows.append(
            {
                "system": "eventsourcing aggregate recorder",
                "row": row,
                "per_s": figures["aggregate"],
            }
        )

    for writers in WRITERS:
        per = max(n // writers, 20)
        figures: dict[str, float] = {}
        for kind in ("default", "functions", "aggregate"):
            rec = recorder(min(writers, 32), kind)

            def writer(per: int = per, rec: Any = rec) -> None:
                oid = uuid.uuid4()
                for v in range(1, per + 1):
                    insert(rec, oid, v, 1)

            def run(writers: int = writers, writer: Any = writer) -> None:
                with ThreadPoolExecutor(writers) as pool:
                    list(pool.map(lambda _: writer(), range(writers)))

            figures[kind] = timed(f"append, {writers} writers", per * writers, run)
            rec.datastore.close()
        best(f"append, {writers} writers", figures)
    batches = max(n // 100, 10)
    figures = {}
    for kind in ("default", "functions", "aggregate"):
        rec = recorder(1, kind)
        oid = uuid.uuid4()

        def many(rec: Any = rec, oid: uuid.UUID = oid) -> None:
            for b in range(batches):
                insert(rec, oid, b * 100 + 1, 100)

        figures[kind] = timed("append_many of 100", batches * 100, many)
        rec.datastore.close()
    best("append_many of 100", figures)
    rec = recorder(1, "default")
    big = uuid.uuid4()
    for b in range(100):
        insert(rec, big, b * 100 + 1, 100)

    def replay() -> None:
        # Decoded, as its application layer would (agentstore's replay returns decoded
        # events too); the raw select alone is given in the notes.
        events = [json.loads(e.state) for e in rec.select_events(big)]
        assert len(events) == 10_000

    def raw_select() -> None:
        assert len(rec.select_events(big)) == 10_000

    rows.append({"system": system, "row": "replay of 10,000", "per_s": timed("", 10_000, replay)})
    rows.append(
        {
            "system": system,
            "row": "replay of 10,000 (undecoded)",
            "per_s": timed("", 10_000, raw_select),
        }
    )
    rec.datastore.close()
    return rows


# The append statement of agentstore/backends/postgres/append.py, on a bare table pair, to
# compare the drivers on exactly our round trips.
_DDL = """
CREATE TABLE IF NOT EXISTS drv_sessions (id text PRIMARY KEY, last_seq bigint NOT NULL DEFAULT 0,
    last_ts timestamptz, prev_ts timestamptz);
CREATE TABLE IF NOT EXISTS drv_events (session_id text NOT NULL, seq bigint NOT NULL, id text NOT NULL,
    type text NOT NULL, ts timestamptz NOT NULL, payload_json text NOT NULL, metadata_json text NOT NULL,
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
            rows.append(await timed(f"driver {name}", label, count * writers * size, run))
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

    rows.append(await timed("driver asyncpg", "replay of 10,000", 10_000, a_read))
    rows.append(await timed("driver psycopg 3", "replay of 10,000", 10_000, p_read))
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


if __name__ == "__main__":
    worker()

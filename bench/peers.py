"""The peers' side of the benchmark, run in `bench/.venv-peers` (never in the project's venv).

`python -m bench.peers` reads one JSON command per line on stdin and answers each with one
JSON line on stdout (a list of result dicts), so the runner can interleave agentstore and
the peers scenario by scenario: ratios are taken between numbers measured minutes apart,
not runs apart. A peer that fails gives an error row instead of stopping the run.

Peers: eventsourcing (POPO and SQLite; its application API and its raw recorder),
langgraph-checkpoint (InMemorySaver), langgraph-checkpoint-sqlite (SqliteSaver,
AsyncSqliteSaver), openai-agents (SQLiteSession). Each does the closest thing it offers to
agentstore's operation; the notes in RESULTS.md say what that is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._timing import measure, measure_async, result

PAYLOAD = {"tool": "search_flights", "query": "BER -> MUC", "step": 0}
PACKAGES = [
    "eventsourcing",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "openai-agents",
    "aiosqlite",
]


def _payload(i: int) -> dict[str, Any]:
    return {"tool": "search_flights", "query": "BER -> MUC", "step": i}


def _err(system: str, exc: BaseException) -> dict[str, Any]:
    return {"system": system, "error": f"{type(exc).__name__}: {exc}"}


@contextlib.contextmanager
def _tmpdir(base: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _pragma_sync(conn: sqlite3.Connection) -> str:
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return f"journal_mode={journal}, synchronous={names.get(sync, sync)}"


# --- langgraph ----------------------------------------------------------------------------


def _lg_config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


def _lg_checkpoint(i: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    from langgraph.checkpoint.base import empty_checkpoint

    cp = empty_checkpoint()
    cp["channel_values"] = {"messages": _payload(i)}
    cp["channel_versions"] = {"messages": i + 2}
    return cp, {"source": "loop", "step": i}, {"messages": i + 2}


def _lg_put_loop(saver: Any, thread: str) -> Callable[[int], Any]:
    config = _lg_config(thread)

    def op(i: int) -> None:
        nonlocal config
        cp, meta, versions = _lg_checkpoint(i)
        config = saver.put(config, cp, meta, versions)

    return op


def _lg_aput_loop(saver: Any, thread: str) -> Callable[[int], Any]:
    config = _lg_config(thread)

    async def op(i: int) -> None:
        nonlocal config
        cp, meta, versions = _lg_checkpoint(i)
        config = await saver.aput(config, cp, meta, versions)

    return op


# --- eventsourcing --------------------------------------------------------------------------


@functools.cache
def _es_classes() -> tuple[type, type]:
    """Define the aggregate and application once (eventsourcing registers topics)."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class AgentLog(Aggregate):
        def __init__(self) -> None:
            self.last: Any = None

        @event("Appended")
        def record(self, payload: dict[str, Any]) -> None:
            self.last = payload

    class AgentApp(Application[uuid.UUID]):
        pass

    return AgentLog, AgentApp


def _es_app(sqlite_path: Path | None, snapshot_every: int | None = None) -> Any:
    log_cls, app_cls = _es_classes()
    env: dict[str, str] = {}
    if sqlite_path is not None:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(sqlite_path)}
    if snapshot_every:
        env["IS_SNAPSHOTTING_ENABLED"] = "y"
    app = app_cls(env=env)
    return app, log_cls


def _es_recorder(sqlite_path: Path | None) -> Any:
    if sqlite_path is None:
        from eventsourcing.popo import POPOApplicationRecorder

        return POPOApplicationRecorder()
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    rec = SQLiteApplicationRecorder(SQLiteDatastore(str(sqlite_path)))
    rec.create_table()
    return rec


def _stored(originator: uuid.UUID, version: int) -> Any:
    import orjson
    from eventsourcing.persistence import StoredEvent

    return StoredEvent(
        originator_id=originator,
        originator_version=version,
        topic="bench:Appended",
        state=orjson.dumps(_payload(version)),
    )


def _es_app_loop(app: Any, log_cls: type) -> Callable[[int], None]:
    agg = log_cls()
    app.save(agg)

    def op(i: int) -> None:
        agg.record(_payload(i))
        app.save(agg)

    return op


def _es_raw_loop(rec: Any, start: int = 1) -> Callable[[int], None]:
    originator = uuid.uuid4()

    def op(i: int) -> None:
        rec.insert_events([_stored(originator, start + i + 1)])

    return op


# --- openai-agents --------------------------------------------------------------------------


def _oa_session(session_id: str, db: str) -> Any:
    from agents.memory.sqlite_session import SQLiteSession

    return SQLiteSession(session_id, db)


def _oa_item(i: int) -> dict[str, Any]:
    return {"role": "user", "content": json.dumps(_payload(i))}


# --- scenarios ------------------------------------------------------------------------------


def append_memory(n: int, base: str) -> list[dict[str, Any]]:
    """Scenario 1 (memory): one session, sequential appends."""
    out: list[dict[str, Any]] = []
    try:
        from langgraph.checkpoint.memory import InMemorySaver

        saver = InMemorySaver()
        out.append(
            measure(
                "langgraph InMemorySaver.put",
                _lg_put_loop(saver, "t1"),
                n,
                warmup=100,
                note="a new checkpoint holding the payload per step",
            )
        )
    except Exception as exc:
        out.append(_err("langgraph InMemorySaver.put", exc))
    try:
        app, log_cls = _es_app(None)
        out.append(
            measure(
                "eventsourcing POPO (application)",
                _es_app_loop(app, log_cls),
                n,
                warmup=100,
                note="aggregate command + Application.save",
            )
        )
    except Exception as exc:
        out.append(_err("eventsourcing POPO (application)", exc))
    try:
        out.append(
            measure(
                "eventsourcing POPO (raw recorder)",
                _es_raw_loop(_es_recorder(None)),
                n,
                warmup=100,
                note="StoredEvent + insert_events",
            )
        )
    except Exception as exc:
        out.append(_err("eventsourcing POPO (raw recorder)", exc))
    try:
        sess = _oa_session("s", ":memory:")

        async def run() -> dict[str, Any]:
            async def op(i: int) -> None:
                await sess.add_items([_oa_item(i)])

            return await measure_async(
                "openai-agents SQLiteSession(:memory:)", op, min(n, 5000), warmup=50
            )

        out.append(asyncio.run(run()))
        sess.close()
    except Exception as exc:
        out.append(_err("openai-agents SQLiteSession(:memory:)", exc))
    return out


def append_durable(n: int, base: str) -> list[dict[str, Any]]:
    """Scenario 2 (durable): one session, sequential, each append on disk when it returns."""
    out: list[dict[str, Any]] = []
    with _tmpdir(base) as tmp:
        try:
            from langgraph.checkpoint.sqlite import SqliteSaver

            with SqliteSaver.from_conn_string(str(tmp / "lg.db")) as saver:
                saver.setup()
                out.append(
                    measure(
                        "langgraph SqliteSaver.put",
                        _lg_put_loop(saver, "t1"),
                        n,
                        warmup=20,
                        note=_pragma_sync(saver.conn),
                    )
                )
        except Exception as exc:
            out.append(_err("langgraph SqliteSaver.put", exc))
        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            async def run_lg() -> dict[str, Any]:
                async with AsyncSqliteSaver.from_conn_string(str(tmp / "lga.db")) as saver:
                    await saver.setup()
                    return await measure_async(
                        "langgraph AsyncSqliteSaver.aput",
                        _lg_aput_loop(saver, "t1"),
                        n,
                        warmup=20,
                    )

            out.append(asyncio.run(run_lg()))
        except Exception as exc:
            out.append(_err("langgraph AsyncSqliteSaver.aput", exc))
        try:
            app, log_cls = _es_app(tmp / "es.db")
            conn = sqlite3.connect(str(tmp / "es.db"))
            note = "aggregate command + Application.save; " + _pragma_sync(conn)
            conn.close()
            out.append(
                measure(
                    "eventsourcing SQLite (application)",
                    _es_app_loop(app, log_cls),
                    n,
                    warmup=20,
                    note=note,
                )
            )
            app.close()
        except Exception as exc:
            out.append(_err("eventsourcing SQLite (application)", exc))
        try:
            rec = _es_recorder(tmp / "esr.db")
            out.append(
                measure(
                    "eventsourcing SQLite (raw recorder)",
                    _es_raw_loop(rec),
                    n,
                    warmup=20,
                    note="StoredEvent + insert_events",
                )
            )
            rec.datastore.close()
        except Exception as exc:
            out.append(_err("eventsourcing SQLite (raw recorder)", exc))
        try:
            sess = _oa_session("s", str(tmp / "oa.db"))

            async def run_oa() -> dict[str, Any]:
                async def op(i: int) -> None:
                    await sess.add_items([_oa_item(i)])

                return await measure_async("openai-agents SQLiteSession (file)", op, n, warmup=20)

            out.append(asyncio.run(run_oa()))
            sess.close()
        except Exception as exc:
            out.append(_err("openai-agents SQLiteSession (file)", exc))
    return out


def append_concurrent(n_per_session: int, sessions: int, base: str) -> list[dict[str, Any]]:
    """Scenario 3: `sessions` sessions appended concurrently by as many tasks."""
    import time

    out: list[dict[str, Any]] = []

    async def fleet(system: str, make_op: Callable[[int], Any], note: str = "") -> dict[str, Any]:
        lat: list[int] = []
        clock = time.perf_counter_ns

        async def worker(k: int) -> None:
            op = await make_op(k)
            for i in range(n_per_session):
                t0 = clock()
                await op(i)
                lat.append(clock() - t0)

        start = clock()
        await asyncio.gather(*(worker(k) for k in range(sessions)))
        return result(system, latencies_ns=lat, wall_ns=clock() - start, note=note)

    with _tmpdir(base) as tmp:
        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            async def run_lg() -> dict[str, Any]:
                async with AsyncSqliteSaver.from_conn_string(str(tmp / "lga.db")) as saver:
                    await saver.setup()

                    async def make(k: int) -> Any:
                        return _lg_aput_loop(saver, f"t{k}")

                    return await fleet(
                        "langgraph AsyncSqliteSaver.aput", make, "one shared connection"
                    )

            out.append(asyncio.run(run_lg()))
        except Exception as exc:
            out.append(_err("langgraph AsyncSqliteSaver.aput", exc))
        try:
            db = str(tmp / "oa.db")

            async def run_oa() -> dict[str, Any]:
                made = []

                async def make(k: int) -> Any:
                    sess = _oa_session(f"s{k}", db)
                    made.append(sess)

                    async def op(i: int) -> None:
                        await sess.add_items([_oa_item(i)])

                    return op

                res = await fleet("openai-agents SQLiteSession (file)", make)
                for sess in made:
                    sess.close()
                return res

            out.append(asyncio.run(run_oa()))
        except Exception as exc:
            out.append(_err("openai-agents SQLiteSession (file)", exc))
        try:
            rec = _es_recorder(tmp / "esr.db")

            async def run_es() -> dict[str, Any]:
                async def make(k: int) -> Any:
                    loop = _es_raw_loop(rec)

                    async def op(i: int) -> None:
                        await asyncio.to_thread(loop, i)

                    return op

                return await fleet(
                    "eventsourcing SQLite (raw recorder)", make, "insert_events via to_thread"
                )

            out.append(asyncio.run(run_es()))
            rec.datastore.close()
        except Exception as exc:
            out.append(_err("eventsourcing SQLite (raw recorder)", exc))
    return out


def append_batch(batches: int, size: int, base: str) -> list[dict[str, Any]]:
    """Scenario 4: append `size` events at once, atomically."""
    out: list[dict[str, Any]] = []

    def es_batch(app: Any, log_cls: type) -> Callable[[int], None]:
        agg = log_cls()
        app.save(agg)

        def op(i: int) -> None:
            for k in range(size):
                agg.record(_payload(k))
            app.save(agg)

        return op

    def es_raw_batch(rec: Any) -> Callable[[int], None]:
        originator = uuid.uuid4()

        def op(i: int) -> None:
            rec.insert_events([_stored(originator, i * size + k + 1) for k in range(size)])

        return op

    with _tmpdir(base) as tmp:
        for label, path in (("POPO", None), ("SQLite", tmp / "es.db")):
            try:
                app, log_cls = _es_app(path)
                out.append(
                    measure(
                        f"eventsourcing {label} (application)",
                        es_batch(app, log_cls),
                        batches,
                        warmup=2,
                        units_per_op=size,
                        unit="event",
                        durable=path is not None,
                    )
                )
            except Exception as exc:
                out.append(_err(f"eventsourcing {label} (application)", exc))
            try:
                rec = _es_recorder(tmp / "esr.db" if path else None)
                out.append(
                    measure(
                        f"eventsourcing {label} (raw recorder)",
                        es_raw_batch(rec),
                        batches,
                        warmup=2,
                        units_per_op=size,
                        unit="event",
                        durable=path is not None,
                    )
                )
            except Exception as exc:
                out.append(_err(f"eventsourcing {label} (raw recorder)", exc))
        for label, db in (("(:memory:)", ":memory:"), ("(file)", str(tmp / "oa.db"))):
            try:
                sess = _oa_session("s", db)

                async def run(sess: Any = sess, label: str = label, db: str = db) -> Any:
                    async def op(i: int) -> None:
                        await sess.add_items([_oa_item(k) for k in range(size)])

                    return await measure_async(
                        f"openai-agents SQLiteSession {label}",
                        op,
                        batches,
                        warmup=2,
                        units_per_op=size,
                        unit="event",
                        durable=db != ":memory:",
                    )

                out.append(asyncio.run(run()))
                sess.close()
            except Exception as exc:
                out.append(_err(f"openai-agents SQLiteSession {label}", exc))
    return out


def get_state(events: int, reps: int, base: str) -> list[dict[str, Any]]:
    """Scenario 5: read the current state of a session that has `events` events."""
    out: list[dict[str, Any]] = []
    with _tmpdir(base) as tmp:
        try:
            from langgraph.checkpoint.memory import InMemorySaver

            saver = InMemorySaver()
            put = _lg_put_loop(saver, "t1")
            for i in range(events):
                put(i)
            cfg = _lg_config("t1")
            out.append(
                measure(
                    "langgraph InMemorySaver.get_tuple",
                    lambda i: saver.get_tuple(cfg),
                    reps,
                    warmup=5,
                    note=f"latest of {events} checkpoints (a checkpoint is the whole state)",
                    durable=False,
                )
            )
        except Exception as exc:
            out.append(_err("langgraph InMemorySaver.get_tuple", exc))
        try:
            from langgraph.checkpoint.sqlite import SqliteSaver

            with SqliteSaver.from_conn_string(str(tmp / "lg.db")) as saver:
                saver.setup()
                saver.conn.execute("PRAGMA synchronous=OFF")  # setup only
                put = _lg_put_loop(saver, "t1")
                for i in range(events):
                    put(i)
                cfg = _lg_config("t1")
                out.append(
                    measure(
                        "langgraph SqliteSaver.get_tuple",
                        lambda i: saver.get_tuple(cfg),
                        reps,
                        warmup=5,
                        note=f"latest of {events} checkpoints",
                        durable=True,
                    )
                )
        except Exception as exc:
            out.append(_err("langgraph SqliteSaver.get_tuple", exc))
        for label, path in (("POPO", None), ("SQLite", tmp / "es.db")):
            for snap in (False, True):
                name = f"eventsourcing {label} repository.get" + (" (snapshot)" if snap else "")
                try:
                    app, log_cls = _es_app(path, snapshot_every=100 if snap else None)
                    agg = log_cls()
                    for k in range(events):
                        agg.record(_payload(k))
                        if k % 100 == 99:
                            app.save(agg)
                    app.save(agg)
                    if snap:
                        app.take_snapshot(agg.id)
                    agg_id = agg.id
                    out.append(
                        measure(
                            name,
                            lambda i, app=app, agg_id=agg_id: app.repository.get(agg_id),
                            reps,
                            warmup=2,
                            note=(
                                "from the latest snapshot"
                                if snap
                                else f"fold of {events} events, no snapshot"
                            ),
                            durable=path is not None,
                            cold=not snap,
                        )
                    )
                except Exception as exc:
                    out.append(_err(name, exc))
    return out


def replay(events: int, reps: int, base: str) -> list[dict[str, Any]]:
    """Scenario 6: read back a session's `events` events from disk."""
    out: list[dict[str, Any]] = []
    with _tmpdir(base) as tmp:
        try:
            rec = _es_recorder(tmp / "esr.db")
            originator = uuid.uuid4()
            rec.insert_events([_stored(originator, v + 1) for v in range(events)])
            out.append(
                measure(
                    "eventsourcing SQLite recorder.select_events",
                    lambda i: rec.select_events(originator),
                    reps,
                    warmup=1,
                    units_per_op=events,
                    unit="event",
                    note="StoredEvent rows (not decoded into domain events)",
                )
            )
            rec.datastore.close()
        except Exception as exc:
            out.append(_err("eventsourcing SQLite recorder.select_events", exc))
        try:
            db = str(tmp / "oa.db")
            sess = _oa_session("s", db)

            async def run() -> dict[str, Any]:
                for k in range(0, events, 1000):
                    await sess.add_items([_oa_item(j) for j in range(k, min(k + 1000, events))])
                sess.close()
                fresh = _oa_session("s", db)

                async def op(i: int) -> None:
                    items = await fresh.get_items()
                    assert len(items) == events

                res = await measure_async(
                    "openai-agents SQLiteSession.get_items",
                    op,
                    reps,
                    warmup=1,
                    units_per_op=events,
                    unit="event",
                )
                fresh.close()
                return res

            out.append(asyncio.run(run()))
        except Exception as exc:
            out.append(_err("openai-agents SQLiteSession.get_items", exc))
    return out


def versions() -> dict[str, str]:
    """Return the installed versions of the peers."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["sqlite"] = sqlite3.sqlite_version
    return found


COMMANDS: dict[str, Callable[..., Any]] = {
    "append_memory": append_memory,
    "append_durable": append_durable,
    "append_concurrent": append_concurrent,
    "append_batch": append_batch,
    "get_state": get_state,
    "replay": replay,
    "versions": versions,
}


def main() -> None:
    """Serve commands from stdin until it closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            answer = COMMANDS[cmd["cmd"]](**cmd.get("args", {}))
        except Exception as exc:
            traceback.print_exc()
            answer = [_err(cmd["cmd"], exc)]
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

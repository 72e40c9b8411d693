"""The physical limits, measured in the same run: plain write+fdatasync loops and raw SQLite.

Nothing here imports agentstore: these loops are what any store on this disk is held to.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from bench._timing import measure, result

__all__ = ["fdatasync_loop", "fdatasync_threads", "sqlite_wal_full"]


def fdatasync_loop(base: Path, line: bytes, n: int, gap_us: int = 0) -> dict[str, Any]:
    """One writer: `os.write` + `os.fdatasync` of `line`, n times, to one file.

    With `gap_us`, the loop spins that long between appends (outside the timed call), as
    a store's own work does: a sync that follows another at once is cheaper than one that
    comes after a pause, so the back-to-back loop is the most favourable baseline.
    """
    path = base / "raw-1.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    clock = time.perf_counter_ns
    try:

        def op(i: int) -> None:
            os.write(fd, line)
            os.fdatasync(fd)

        if not gap_us:
            return measure(
                "raw os.write + os.fdatasync (1 writer)", op, n, warmup=20, durable=True, raw=True
            )
        lat = []
        for i in range(n + 20):
            t0 = clock()
            op(i)
            lat.append(clock() - t0)
            end = clock() + gap_us * 1000
            while clock() < end:  # the store's share of an append, spent between syncs
                pass
        lat = lat[20:]
        return result(
            f"raw os.write + os.fdatasync (1 writer, {gap_us} µs of CPU work between appends)",
            latencies_ns=lat,
            wall_ns=sum(lat),
            durable=True,
            raw=True,
            note="the write+sync alone; context for the back-to-back loop, not a target",
        )
    finally:
        os.close(fd)
        path.unlink()


def fdatasync_threads(base: Path, line: bytes, per_thread: int, threads: int) -> dict[str, Any]:
    """`threads` writers, each its own file, each `per_thread` write+fdatasync; total ops/s."""
    lat: list[int] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        path = base / f"raw-t{k}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        mine: list[int] = []
        clock = time.perf_counter_ns
        try:
            start_gate.wait()
            for _ in range(per_thread):
                t0 = clock()
                os.write(fd, line)
                os.fdatasync(fd)
                mine.append(clock() - t0)
        finally:
            os.close(fd)
            path.unlink()
        with lock:
            lat.extend(mine)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter_ns()
    for t in pool:
        t.join()
    wall = time.perf_counter_ns() - t0
    return result(
        f"raw os.write + os.fdatasync ({threads} threads, a file each)",
        latencies_ns=lat,
        wall_ns=wall,
        durable=True,
        raw=True,
    )


def sqlite_wal_full(base: Path, line: bytes, n: int, preload: int = 1000) -> dict[str, Any]:
    """SQLite in WAL mode with synchronous=FULL, one INSERT per transaction."""
    path = base / "raw.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE events (session_id TEXT, seq INTEGER, body BLOB, "
            "PRIMARY KEY (session_id, seq)) WITHOUT ROWID"
        )
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events VALUES ('s', ?, ?)", ((k + 1, line) for k in range(preload))
        )
        conn.execute("COMMIT")

        def op(i: int) -> None:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO events VALUES ('s', ?, ?)", (preload + 100 + i, line))
            conn.execute("COMMIT")

        return measure(
            "raw SQLite WAL, synchronous=FULL, 1 insert/txn",
            op,
            n,
            warmup=20,
            durable=True,
            raw=True,
            note=f"sqlite {sqlite3.sqlite_version}",
        )
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

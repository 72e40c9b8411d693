"""agentstore's side of scenarios 1-7, each under a 1 ms heartbeat (see `_timing.Heartbeat`).

Every function returns result dicts (see `_timing.result`) with `system`, `backend` and
`heartbeat_ms` (the longest gap between ticks of the heartbeat while it ran).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

import agentstore
from agentstore import EventType, Store, new_event
from agentstore.backends.memory import MemoryBackend
from bench._timing import Heartbeat, between_calls, harness_drop, measure_async, result

TYPES = [
    EventType.USER_MESSAGE,
    EventType.PLAN_CREATED,
    EventType.TOOL_CALLED,
    EventType.TOOL_RESULT,
    EventType.LLM_REQUEST,
    EventType.LLM_RESPONSE,
    EventType.STATE_UPDATED,
    EventType.ERROR,
    EventType.CUSTOM,
    "cache_hit",
]


def payload(i: int) -> dict[str, Any]:
    """The small map payload of the Go original's BenchmarkAppend."""
    return {"tool": "search_flights", "query": "BER -> MUC", "step": i}


@contextmanager
def tmpdir(base: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _beat(
    system: str,
    backend: str,
    run: Callable[[], Awaitable[dict[str, Any]]],
    **extra: Any,
) -> dict[str, Any]:
    async with Heartbeat() as hb:
        res = await run()
    res.update(
        system=system,
        backend=backend,
        heartbeat_ms=hb.longest_gap_ms,
        loop_busy_ms=hb.longest_busy_ms,
        gc_ms=hb.longest_gc_ms,
        drop_ms=hb.longest_drop_ms,
        gap_waiting_ms=hb.gap_waiting_ms,
        own_gap_ms=hb.longest_own_gap_ms,
        **extra,
    )
    return res


async def _fill(store: Store, sid: str, count: int, *, kinds: bool = False) -> None:
    """Append `count` events in batches of 1,000 (one sync each)."""
    done = 0
    while done < count:
        k = min(1000, count - done)
        await store.append_many(
            sid,
            [
                new_event(
                    TYPES[(done + j) % 10] if kinds else EventType.TOOL_CALLED, payload(done + j)
                )
                for j in range(k)
            ],
        )
        done += k


def _append_op(store: Store, sid: str) -> Callable[[int], Awaitable[Any]]:
    async def op(i: int) -> None:
        await store.append(sid, new_event(EventType.TOOL_CALLED, payload(i)))

    return op


async def start_up(base: Path) -> None:
    """Open, use and close a file store and an in-memory store once, as an agent's start-up.

    The first store of each kind imports the modules it uses (the file backend's, the
    commit thread's): several thousand objects that a long-running agent has loaded before
    it freezes its start-up heap (docs/performance.md), and that would otherwise stay in
    every full collection of the run.
    """
    with tmpdir(base) as tmp:
        for opened in (agentstore.open(tmp), agentstore.open(in_memory=True)):
            async with opened as store:
                sid = (await store.create_session(labels={"env": "bench"})).id
                await store.append(sid, new_event(EventType.TOOL_CALLED, payload(0)))
                await store.append_many(sid, [new_event(t, payload(1)) for t in TYPES])
                await store.replay(sid)
                await store.replay(sid, types=["tool_called"])
                await store.get_state(sid)
                await store.list_sessions(limit=10)


# --- scenario 1 ---------------------------------------------------------------------------


async def append_memory(n: int, base: Path) -> list[dict[str, Any]]:
    """new_event + append, one session, sequential (snapshots off, like BenchmarkAppend)."""
    out = []
    async with agentstore.open(in_memory=True, snapshot_interval=0) as store:
        sid = (await store.create_session()).id
        out.append(
            await _beat(
                "agentstore",
                "memory",
                lambda: measure_async("", _append_op(store, sid), n, warmup=200),
                durable=False,
            )
        )
    with tmpdir(base) as tmp:
        async with agentstore.open(tmp, snapshot_interval=0, durability="flush") as store:
            sid = (await store.create_session()).id
            out.append(
                await _beat(
                    "agentstore",
                    "file, durability=flush",
                    lambda: measure_async("", _append_op(store, sid), n // 2, warmup=100),
                    durable=False,
                    note="on the OS when it returns (survives a process crash, not power loss)",
                )
            )
    return out


# --- scenario 2 ---------------------------------------------------------------------------


async def append_durable(n: int, sizes: list[int], base: Path) -> list[dict[str, Any]]:
    """Durable (fsync) appends to one session, with `sizes` events already in its log."""
    out = []
    with tmpdir(base) as tmp:
        async with agentstore.open(tmp) as store:
            sid = (await store.create_session()).id
            have = 0
            for size in sizes:
                await _fill(store, sid, size - have)
                res = await _beat(
                    "agentstore",
                    f"file, fsync, {size:,} events in the log",
                    lambda: measure_async("", _append_op(store, sid), n, warmup=20),
                    durable=True,
                    log_size=size,
                )
                out.append(res)
                have = size + n + 20
    return out


# --- scenario 3 ---------------------------------------------------------------------------


async def append_concurrent(
    n_per_session: int, sessions: int, base: Path, *, durability: str = "fsync"
) -> list[dict[str, Any]]:
    """`sessions` sessions, each appended to sequentially by its own task, all at once."""
    with tmpdir(base) as tmp:
        async with agentstore.open(tmp, durability=durability) as store:  # type: ignore[arg-type]
            sids = [(await store.create_session()).id for _ in range(sessions)]
            for sid in sids:
                await store.append(sid, new_event(EventType.USER_MESSAGE, payload(0)))

            async def run() -> dict[str, Any]:
                lat: list[int] = []
                clock = time.perf_counter_ns

                async def worker(sid: str) -> None:
                    for i in range(n_per_session):
                        t0 = clock()
                        await store.append(sid, new_event(EventType.TOOL_CALLED, payload(i)))
                        lat.append(clock() - t0)

                start = clock()
                async with asyncio.TaskGroup() as tg:
                    for sid in sids:
                        tg.create_task(worker(sid))
                return result("", latencies_ns=lat, wall_ns=clock() - start)

            return [
                await _beat(
                    "agentstore",
                    f"file, {durability}, {sessions} sessions x {sessions} tasks",
                    run,
                    durable=durability == "fsync",
                )
            ]


async def append_one_session(n_per_task: int, tasks: int, base: Path) -> list[dict[str, Any]]:
    """`tasks` tasks appending to ONE session at once (durability fsync)."""
    with tmpdir(base) as tmp:
        async with agentstore.open(tmp) as store:
            sid = (await store.create_session()).id
            await store.append(sid, new_event(EventType.USER_MESSAGE, payload(0)))

            async def run() -> dict[str, Any]:
                lat: list[int] = []
                clock = time.perf_counter_ns

                async def worker() -> None:
                    for i in range(n_per_task):
                        t0 = clock()
                        await store.append(sid, new_event(EventType.TOOL_CALLED, payload(i)))
                        lat.append(clock() - t0)

                start = clock()
                async with asyncio.TaskGroup() as tg:
                    for _ in range(tasks):
                        tg.create_task(worker())
                return result("", latencies_ns=lat, wall_ns=clock() - start)

            return [
                await _beat(
                    "agentstore", f"file, fsync, {tasks} tasks on one session", run, durable=True
                )
            ]


# --- scenario 4 ---------------------------------------------------------------------------


async def append_batch(batches: int, size: int, base: Path) -> list[dict[str, Any]]:
    """append_many of `size` events, `batches` times."""
    out = []

    def op_for(store: Store, sid: str) -> Callable[[int], Awaitable[Any]]:
        async def op(i: int) -> None:
            await store.append_many(
                sid, [new_event(EventType.TOOL_CALLED, payload(k)) for k in range(size)]
            )

        return op

    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        out.append(
            await _beat(
                "agentstore",
                "memory",
                lambda: measure_async(
                    "", op_for(store, sid), batches, warmup=5, units_per_op=size, unit="event"
                ),
                durable=False,
            )
        )
    with tmpdir(base) as tmp:
        async with agentstore.open(tmp) as store:
            sid = (await store.create_session()).id
            out.append(
                await _beat(
                    "agentstore",
                    "file, fsync",
                    lambda: measure_async(
                        "", op_for(store, sid), batches, warmup=5, units_per_op=size, unit="event"
                    ),
                    durable=True,
                )
            )
    return out


# --- scenario 5 ---------------------------------------------------------------------------


async def get_state(reps: int, base: Path) -> list[dict[str, Any]]:
    """Hot (cached) and cold get_state, with and without a snapshot."""
    out = []
    backend = MemoryBackend()
    async with Store(backend) as store:
        sid = (await store.create_session()).id
        await _fill(store, sid, 1000)
        await store.get_state(sid)
        out.append(
            await _beat(
                "agentstore",
                "memory, hot (cached), 1,000 events",
                lambda: measure_async("", lambda i: store.get_state(sid), reps, warmup=100),
                durable=False,
                kind="hot",
            )
        )
        for count in (1000, 10000):
            if count == 10000:
                await _fill(store, sid, 9000)
                await store.get_state(sid)  # the fill's snapshot writes are done (see replay)
            # A store with no cache and no snapshots folds every event on every call.
            cold = Store(backend, cache_size=0, snapshot_interval=0)
            await cold
            k = reps // 20 if count == 1000 else max(reps // 200, 10)
            out.append(
                await _beat(
                    "agentstore",
                    f"memory, uncached, no snapshot, {count:,} events",
                    lambda cold=cold, k=k: measure_async(
                        "", lambda i: cold.get_state(sid), k, warmup=2
                    ),
                    durable=False,
                    kind="cold",
                    events=count,
                )
            )
            cold._closed = True  # shares the backend: do not close it twice
    with tmpdir(base) as tmp:
        async with agentstore.open(tmp) as store:
            hot = (await store.create_session()).id
            await _fill(store, hot, 1000)
            await store.get_state(hot)
            out.append(
                await _beat(
                    "agentstore",
                    "file, hot (cached), 1,000 events",
                    lambda: measure_async("", lambda i: store.get_state(hot), reps, warmup=100),
                    durable=True,
                    kind="hot",
                )
            )
            snap = (await store.create_session()).id
            await _fill(store, snap, 1000)
            for i in range(50):
                await store.append(snap, new_event(EventType.TOOL_CALLED, payload(i)))
            big = (await store.create_session()).id
            await _fill(store, big, 1000)
        for sid, label, interval, k, count in (
            (snap, "file, cold (reopened), snapshot at 1,000 + 50 events", 100, reps // 20, 1050),
            (big, "file, cold (reopened), no snapshot, 1,000 events", 0, reps // 40, 1000),
            (
                big,
                "file, cold (reopened), no snapshot, 10,000 events",
                0,
                max(reps // 400, 10),
                10000,
            ),
        ):
            if count == 10000:
                async with agentstore.open(tmp) as store:
                    await _fill(store, big, 9000)

            async def run(sid: str = sid, interval: int = interval, k: int = k) -> dict[str, Any]:
                lat = []
                for _ in range(k + 2):
                    async with agentstore.open(tmp, snapshot_interval=interval) as fresh:
                        t0 = time.perf_counter_ns()
                        await fresh.get_state(sid)
                        lat.append(time.perf_counter_ns() - t0)
                    await between_calls()  # as `measure_async` does
                lat = lat[2:]
                return result("", latencies_ns=lat, wall_ns=sum(lat))

            out.append(
                await _beat("agentstore", label, run, durable=True, kind="cold", events=count)
            )
    return out


# --- scenario 6 ---------------------------------------------------------------------------


def _bare_replay(log: Path, events: int, reps: int) -> dict[str, Any]:
    """The floor of a replay: read the session's log file and `orjson.loads` every line."""
    lat = []
    loads = orjson.loads
    for _ in range(reps + 1):
        t0 = time.perf_counter_ns()
        with log.open("rb") as handle:
            got = [loads(line) for line in handle]
        lat.append(time.perf_counter_ns() - t0)
        assert len(got) >= events
        del got
    lat = lat[1:]
    return result(
        "bare loop: read the log file, orjson.loads every line",
        latencies_ns=lat,
        wall_ns=sum(lat),
        units_per_op=events,
        unit="event",
        raw=True,
        note="no events built, nothing checked: the floor a replay is measured against",
    )


async def replay(events: int, reps: int, base: Path) -> list[dict[str, Any]]:
    """Replay a session's events: from disk on a freshly opened store, and from memory."""
    out = []
    with tmpdir(base) as tmp:
        async with agentstore.open(tmp) as store:
            sid = (await store.create_session()).id
            await _fill(store, sid, events, kinds=True)
        for label, types in (
            ("all events", None),
            ("type filter keeping 1 in 10", ["tool_called"]),
        ):

            async def run(types: list[str] | None = types) -> dict[str, Any]:
                lat = []
                for _ in range(reps + 1):
                    async with agentstore.open(tmp) as fresh:
                        t0 = time.perf_counter_ns()
                        held = [await fresh.replay(sid, types=types)]
                        lat.append(time.perf_counter_ns() - t0)
                        assert len(held[0]) == (events if types is None else events // 10)
                        # Not kept alive into the next replay (no agent holds two at once):
                        # the collector would walk both. Freed as `measure_async` frees
                        # results: timed apart from the heartbeat's gaps (`harness_drop`).
                        harness_drop(held)
                        await between_calls()
                lat = lat[1:]
                return result(
                    "", latencies_ns=lat, wall_ns=sum(lat), units_per_op=events, unit="event"
                )

            out.append(
                await _beat(
                    "agentstore",
                    f"file, cold (reopened), {label}",
                    run,
                    durable=True,
                    filtered=types is not None,
                )
            )
        out.append(_bare_replay(tmp / "events" / f"{sid}.jsonl", events, reps))
    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        await _fill(store, sid, events, kinds=True)
        # The fill's snapshots are written behind its appends (each folds up to 1,000
        # events); `get_state` waits for them, so that the row times the replay alone.
        await store.get_state(sid, at_seq=0)
        out.append(
            await _beat(
                "agentstore",
                "memory, all events",
                lambda: measure_async(
                    "",
                    lambda i: store.replay(sid),
                    reps,
                    warmup=1,
                    units_per_op=events,
                    unit="event",
                ),
                durable=False,
            )
        )
    return out


# --- scenario 7 ---------------------------------------------------------------------------


def write_sessions(root: Path, count: int) -> None:
    """Lay out `count` empty sessions directly in the file backend's format (setup only)."""
    for d in ("sessions", "events", "snapshots"):
        (root / d).mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for k in range(count):
        sid = str(uuid.uuid4())
        ts = (start + timedelta(seconds=k)).isoformat().replace("+00:00", "Z")
        (root / "sessions" / f"{sid}.json").write_bytes(
            orjson.dumps(
                {
                    "id": sid,
                    "name": f"agent-{k}",
                    "created_at": ts,
                    "updated_at": ts,
                    "event_count": 0,
                    "labels": {"env": "bench"},
                }
            )
        )
        (root / "events" / f"{sid}.jsonl").write_bytes(b"")


async def list_sessions(count: int, reps: int, base: Path) -> list[dict[str, Any]]:
    """list_sessions(limit=100) over `count` sessions."""
    out = []
    async with agentstore.open(in_memory=True) as store:
        for _ in range(count):
            await store.create_session(labels={"env": "bench"})
        out.append(
            await _beat(
                "agentstore",
                "memory",
                lambda: measure_async("", lambda i: store.list_sessions(limit=100), reps, warmup=2),
                durable=False,
            )
        )
    with tmpdir(base) as tmp:
        write_sessions(tmp, count)
        async with agentstore.open(tmp) as store:
            out.append(
                await _beat(
                    "agentstore",
                    "file",
                    lambda: measure_async(
                        "", lambda i: store.list_sessions(limit=100), max(reps // 5, 3), warmup=1
                    ),
                    durable=True,
                )
            )
    return out


def sample_line() -> bytes:
    """The bytes agentstore writes for one scenario-1 event (for the raw baselines)."""
    from agentstore.backends.base import PendingEvent, plan_append
    from agentstore.events import empty_metadata, encode_payload

    pend = PendingEvent(
        id=str(uuid.uuid4()),
        type="tool_called",
        payload=payload(1),
        payload_json=encode_payload(payload(1)),
        metadata=empty_metadata(),
        metadata_json=b"{}",
    )
    from agentstore.codec import encode_line

    sid = str(uuid.uuid4())
    plan = plan_append(sid, [pend], last_seq=41, last_ts=None, known_ids={}, now=datetime.now(UTC))
    [(pending, seq, ts)] = plan.new
    return encode_line(pending.id, sid, seq, pending.type, pending.payload_json, ts, b"{}")


def disk_info(path: Path) -> str:
    """Name the filesystem and device `path` lives on."""
    st = os.statvfs(path)
    dev = fs = "?"
    try:
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if str(path.resolve()).startswith(parts[1]) and len(parts[1]) >= len(best):
                best, dev, fs = parts[1], parts[0], parts[2]
    except OSError:
        pass
    return f"{dev} ({fs}), {st.f_blocks * st.f_frsize / 2**30:.0f} GiB"

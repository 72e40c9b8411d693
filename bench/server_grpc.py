"""`python -m bench.server_grpc [--quick] [--write bench/RESULTS.md]`: appends through gRPC.

A real `agentstore serve` (its own process, a file store with durability `fsync`, the gRPC
door only) on loopback, and 16 then 64 concurrent clients in this process, each with its
own channel (its own HTTP/2 connection) and its own session, appending one event per call
in a loop for a fixed time, three times (new clients each time; the best run is the
row's, as the in-process row is the best of three). Throughput is appends per second over
the run; latency is each append's, client side. Four client kinds:

- `AgentStore.Append`: one unary call per event, what an agent in any language does with
  the plainest client (the server's `Store` validates, prices and folds the event);
- `AgentStore.AppendStream`: the same appends as messages of one long-lived call per
  client (an agent that appends often; about half the server's CPU per append);
- `agentstore.open("grpc://...")`: the Python remote backend (the client's `Store` does
  that work; the server's `Storage.AppendStream` only stores);
- one `agentstore.open("grpc://...")` shared by the clients: the in-process row's program
  (16 tasks, 16 sessions, one `Store`) with its store opened at the server's address.
  Each task still waits for its own answer; the store sends their appends on its one
  call, several in flight at once. A separate row, not the goal's: the goal's clients
  are separate programs, each with a connection of its own.

Each client of the first two kinds has its own TCP connection, as agents in separate
processes would: grpc gives channels of one process with the same settings one shared
connection unless told otherwise (`_OWN_CONNECTION`; measured on the 2026-11-30 machine,
16 AppendStream clients on one shared connection or on 16: the same within noise). The
remote backend's stores, all in this process, share one, as any process's stores do.

Server CPU is the server process's user + system time per append (all its threads);
client CPU is this process's (all 16 or 64 clients, grpcio's threads included): both
share the machine's cores, so what the clients cost is not left to the server.

The in-process figure of the same run is scenario 3 of `make bench`: 16 tasks appending to
16 sessions of one file store in this process (fsync), the best of three runs, each run
just before one of the 16 `AppendStream` clients' three (`goal_rows`). The goal:
16 gRPC clients reach at least half of it. The last row is the transport's own ceiling
on this machine: a bare grpc.aio server (`--echo-server`, no store, no protobuf) that
sends each message of a bidirectional call straight back, driven by the same 16 clients
with messages of an append's size. The section is written into RESULTS.md between two
markers, so the rest of the file (written by `python -m bench`) is left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The clients run with the grpc settings of agentstore's server and remote backend, which
# importing the server package sets before grpc loads (see agentstore/server/__init__.py);
# GRPC_EXPERIMENTS="" runs both the clients and the server with grpc's defaults instead.
import agentstore.server

# isort: split
import grpc
import orjson

import agentstore
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from bench import scenarios
from bench._timing import result

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- server-grpc:begin -->"
END = "<!-- server-grpc:end -->"
AFTER = "<!-- server-http:end -->"  # the HTTP door's section, by bench/server_http.py
Row = dict[str, Any]
_LABELS = {
    "api": "AgentStore.Append",
    "stream": "AgentStore.AppendStream",
    "remote": 'open("grpc://...")',
    "shared": 'one open("grpc://...") shared by the clients',
    "echo": "bare grpc.aio echo, no store",
}
_ECHO_METHOD = "/bench.Echo/Stream"
_OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
"""Channel settings that give a client a connection of its own (not grpc's shared one)."""


@contextlib.contextmanager
def server(data_dir: Path | None, *, echo: bool = False) -> Any:
    """Run `agentstore serve` (gRPC only, port 0; None: in memory); yield host:port and pid.

    With `echo`, run this module's bare echo server instead (see `serve_echo`).
    """
    where = ["--data-dir", str(data_dir)] if data_dir is not None else ["--in-memory"]
    cmd = [sys.executable, "-m", "agentstore_cli", "serve", *where]
    cmd += ["--no-http", "--grpc-port", "0", "--max-streams", "512"]
    if echo:
        cmd = [sys.executable, "-m", "bench.server_grpc", "--echo-server"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"agentstore serve did not start (exit {proc.wait()})")
        yield orjson.loads(line)["listening"]["grpc"], proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _drive(
    clients: int,
    seconds: float,
    make: Callable[[int], Awaitable[Callable[[int], Awaitable[Any]]]],
) -> tuple[list[int], int]:
    """Run `clients` loops of `op(i)` for `seconds`; return latencies (ns) and wall (ns)."""
    ops = [await make(k) for k in range(clients)]
    for op in ops:  # warm each connection before the clock starts
        await op(-1)
    lat: list[int] = []
    clock = time.perf_counter_ns
    stop = clock() + int(seconds * 1e9)

    async def loop(op: Callable[[int], Awaitable[Any]]) -> None:
        i = 0
        while clock() < stop:
            t0 = clock()
            await op(i)
            lat.append(clock() - t0)
            i += 1

    start = clock()
    async with asyncio.TaskGroup() as tg:
        for op in ops:
            tg.create_task(loop(op))
    return lat, clock() - start


@contextlib.asynccontextmanager
async def _api_clients(target: str) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    channels: list[grpc.aio.Channel] = []

    async def make(_: int) -> Callable[[int], Awaitable[Any]]:
        channel = grpc.aio.insecure_channel(target, _OWN_CONNECTION)
        channels.append(channel)
        stub = pb_grpc.AgentStoreStub(channel)
        sid = (await stub.CreateSession(pb.CreateSessionRequest(name="bench"))).id

        async def op(i: int) -> Any:
            body = orjson.dumps(scenarios.payload(i))
            event = pb.NewEvent(type="tool_called", payload_json=body)
            return await stub.Append(pb.AppendRequest(session_id=sid, events=[event]))

        return op

    try:
        yield make  # type: ignore[misc]
    finally:
        for channel in channels:
            await channel.close()


Op = Callable[[int], Awaitable[Any]]


@contextlib.asynccontextmanager
async def _stream_calls(
    target: str, open_op: Callable[[grpc.aio.Channel, list[Any]], Awaitable[Op]]
) -> AsyncIterator[Callable[[int], Awaitable[Op]]]:
    """Clients each on a channel of their own and one long-lived streaming call (which
    `open_op` opens, records in the list it is given, and wraps as one append), all
    closed on this loop at the end."""
    channels: list[grpc.aio.Channel] = []
    calls: list[Any] = []

    async def make(_: int) -> Op:
        channel = grpc.aio.insecure_channel(target, _OWN_CONNECTION)
        channels.append(channel)
        return await open_op(channel, calls)

    try:
        yield make
    finally:
        for call in calls:
            await call.done_writing()
            await call.code()  # the call ends on this loop (no event left for a closed one)
        for channel in channels:
            await channel.close()


async def _append_stream_op(channel: grpc.aio.Channel, calls: list[Any]) -> Op:
    stub = pb_grpc.AgentStoreStub(channel)
    sid = (await stub.CreateSession(pb.CreateSessionRequest(name="bench"))).id
    call = stub.AppendStream()
    calls.append(call)

    async def op(i: int) -> Any:
        body = orjson.dumps(scenarios.payload(i))
        event = pb.NewEvent(type="tool_called", payload_json=body)
        request = pb.AppendRequest(session_id=sid, events=[event])
        await call.write(pb.AppendStreamRequest(tag=i + 1, append=request))
        reply = await call.read()
        if reply.WhichOneof("result") != "ok":
            raise RuntimeError(f"append failed: {reply}")
        return reply

    return op


def _stream_clients(target: str) -> contextlib.AbstractAsyncContextManager[Any]:
    return _stream_calls(target, _append_stream_op)


@contextlib.asynccontextmanager
async def _remote_clients(target: str) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    stores: list[agentstore.Store] = []

    async def make(_: int) -> Callable[[int], Awaitable[Any]]:
        store = await agentstore.open(f"grpc://{target}", pricing=False)
        stores.append(store)
        return await _appender(store)

    try:
        yield make  # type: ignore[misc]
    finally:
        for store in stores:
            await store.close()


@contextlib.asynccontextmanager
async def _shared_remote_clients(target: str) -> AsyncIterator[Callable[[int], Awaitable[Any]]]:
    """Clients that are tasks of one program sharing one remote `Store`, as the in-process
    row's 16 tasks share one store: each still waits for its own answer, but their appends
    ride one `AppendStream` call on one connection, several in flight at once."""
    store = await agentstore.open(f"grpc://{target}", pricing=False)

    async def make(_: int) -> Callable[[int], Awaitable[Any]]:
        return await _appender(store)

    try:
        yield make  # type: ignore[misc]
    finally:
        await store.close()


async def _appender(store: agentstore.Store) -> Callable[[int], Awaitable[Any]]:
    """A new session of `store` and an op that appends the bench's event `i` to it."""
    sid = (await store.create_session(name="bench")).id

    async def op(i: int) -> Any:
        event = agentstore.new_event(agentstore.EventType.TOOL_CALLED, scenarios.payload(i))
        return await store.append(sid, event)

    return op


async def serve_echo() -> None:
    """A bare grpc.aio server: each message of a bidirectional call is sent straight back.

    No store, no protobuf (bytes in, bytes out): what grpc.aio itself costs per message
    on this machine, the ceiling of any server built on it. Prints where it listens the
    way `agentstore serve` does, and runs until SIGTERM.
    """

    async def stream(_: Any, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        while (message := await context.read()) is not grpc.aio.EOF:
            await context.write(message)

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Stream": grpc.stream_stream_rpc_method_handler(stream)}
    )
    echo = grpc.aio.server()
    echo.add_generic_rpc_handlers((handler,))
    port = echo.add_insecure_port("127.0.0.1:0")
    await echo.start()
    print(orjson.dumps({"listening": {"grpc": f"127.0.0.1:{port}"}}).decode(), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await echo.stop(None)


async def _echo_op(channel: grpc.aio.Channel, calls: list[Any]) -> Op:
    call = channel.stream_stream(_ECHO_METHOD)()
    calls.append(call)

    async def op(i: int) -> Any:
        # An append's message, as bytes: the same size on the wire as the other rows.
        event = pb.NewEvent(type="tool_called", payload_json=orjson.dumps(scenarios.payload(i)))
        request = pb.AppendRequest(session_id="s" * 26, events=[event])
        await call.write(pb.AppendStreamRequest(tag=i + 1, append=request).SerializeToString())
        return await call.read()

    return op


def _echo_clients(target: str) -> contextlib.AbstractAsyncContextManager[Any]:
    return _stream_calls(target, _echo_op)


async def same_driver_row(base: Path, seconds: float) -> Row:
    """16 tasks on 16 sessions of one file store in this process, driven as the gRPC clients.

    `_drive` runs for a fixed time, so each session gets as many events as a gRPC client
    gives its own (and the store's snapshot every 100 events with them), where scenario 3
    appends 40 per session (200 without --quick) and is over in a few hundredths of a
    second. Its CPU column is this process's, per append.
    """
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        async with agentstore.open(tmp) as store:

            async def make(_: int) -> Callable[[int], Awaitable[Any]]:
                sid = (await store.create_session(name="bench")).id

                async def op(i: int) -> Any:
                    event = agentstore.new_event(
                        agentstore.EventType.TOOL_CALLED, scenarios.payload(i)
                    )
                    return await store.append(sid, event)

                return op

            mine = time.process_time()
            lat, wall = await _drive(16, seconds, make)
            mine = time.process_time() - mine
    row = result(
        f"in-process Store, driven as the gRPC clients ({seconds:g} s)",
        latencies_ns=lat,
        wall_ns=wall,
        clients=16,
    )
    row["server_cpu_us"] = mine / max(len(lat), 1) * 1e6
    return row


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TRIES = 3
"""Runs per row, the best kept: as the in-process row is the best of three, so that one
stall of the shared machine spoils neither side's figure alone."""


async def _one_run(target: str, pid: int, seconds: float, kind: str, clients: int) -> Row:
    """One run of `clients` new clients of `kind` (new channels and sessions)."""
    clients_of = {
        "api": _api_clients,
        "stream": _stream_clients,
        "echo": _echo_clients,
        "shared": _shared_remote_clients,
    }.get(kind, _remote_clients)
    async with clients_of(target) as make:
        cpu, mine = cpu_seconds(pid), time.process_time()
        lat, wall = await _drive(clients, seconds, make)  # type: ignore[arg-type]
        cpu, mine = cpu_seconds(pid) - cpu, time.process_time() - mine
    row = result(f"gRPC, {_LABELS[kind]}", latencies_ns=lat, wall_ns=wall, clients=clients)
    # Includes the warm-up calls: a close upper bound of the server's cost per append.
    row["server_cpu_us"] = cpu / max(len(lat), 1) * 1e6
    row["client_cpu_us"] = mine / max(len(lat), 1) * 1e6
    return row


async def grpc_rows(
    target: str,
    pid: int,
    seconds: float,
    kinds: list[str],
    sizes: tuple[int, ...] = (16, 64),
    measured: dict[tuple[str, int], Row] | None = None,
) -> list[Row]:
    """Measure each client kind at each number of clients against the server at `target`:
    the best of `TRIES` runs, each with new clients (new channels and sessions). A row in
    `measured` (by kind and clients) was measured already and is taken as it is."""
    rows = []
    for kind in kinds:
        for clients in sizes:
            done = (measured or {}).get((kind, clients))
            if done is None:
                tries = [await _one_run(target, pid, seconds, kind, clients) for _ in range(TRIES)]
                done = max(tries, key=lambda r: r["ops_per_s"])
            rows.append(done)
    return rows


async def goal_rows(
    target: str, pid: int, seconds: float, base: Path, per_session: int
) -> tuple[Row, Row]:
    """The goal's two figures, run by run: scenario 3 in this process (16 tasks appending
    `per_session` events each to 16 sessions of one file store), then 16 `AppendStream`
    clients of the server at `target`, `TRIES` times; the best of each. Interleaved, a
    spell of the shared machine's other tenants slows both sides alike: measured one
    after the other, minutes apart, the goal's ratio went from 0.50x in one run to 0.65x
    in the next (2026-12-01, the in-process row 9,247/s, then 5,992/s)."""
    in_process, stream = [], []
    for _ in range(TRIES):
        in_process.append((await scenarios.append_concurrent(per_session, 16, base))[0])
        stream.append(await _one_run(target, pid, seconds, "stream", 16))
    best = max(in_process, key=lambda r: r["ops_per_s"])
    return best, max(stream, key=lambda r: r["ops_per_s"])


def table(in_process: Row, rows: list[Row], info: dict[str, str]) -> str:
    """The RESULTS.md section: the in-process row, the gRPC rows, and the goal."""
    base = in_process["ops_per_s"]
    lines = [
        BEGIN,
        "### gRPC",
        "",
        f"`python -m bench.server_grpc` on {info['date']}, {info['cores']} cores, "
        f"{info['python']}, load {info['load']}. One `agentstore serve` process (file store, "
        "durability `fsync`, gRPC door only); the clients run in one other process on the "
        "same cores, each with its own channel (HTTP/2 connection) and session, appending one "
        f"event at a time for {info['seconds']} s (each row the best of three such runs, "
        "as the in-process row is): one unary call per event (`Append`), or "
        "one message per event on a call kept open (`AppendStream`; the remote backend "
        'sends its appends that way). The row of one `open("grpc://...")` shared by the '
        "clients is the in-process row's program with its store opened at the server's "
        "address: 16 tasks of one process, each waiting for its own answer, their appends "
        "on one call of one connection (several in flight at once); not the goal's clients, "
        "which are separate programs. The in-process row is scenario 3's shape in this run: "
        "16 tasks, 16 sessions, one store in the clients' process (the best of three runs; "
        "40 appends per session with --quick, 200 without), each run just before one of "
        "the three of the 16 `AppendStream` clients, so that a busy spell of the shared "
        "machine slows both sides of the goal's ratio alike. The next row is the same store "
        "driven as the gRPC clients are: for the same time, so its sessions grow as theirs "
        "and get the store's snapshots every 100 events (its CPU column is its process's). "
        "The "
        "in-memory rows serve an in-memory store: what the gRPC door costs without the "
        "disk. The echo row is "
        "grpc.aio alone (a server that sends each message straight back: no store, no "
        "protobuf), the ceiling of any server built on it here. CPU columns: per append "
        "(per message for the echo), of the server process and of the one process running "
        "every client.",
        "",
        "| setup | clients | events/s | p50 ms | p99 ms | server CPU ms/append "
        "| client CPU ms/append | ÷ in-process 16 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| in-process Store | 16 | {base:,.0f} | {in_process['median_us'] / 1000:.2f} | "
        f"{in_process['p99_us'] / 1000:.2f} | - | - | 1.00x |",
    ]
    for row in rows:
        lines.append(
            f"| {row['system']} | {row['clients']} | {row['ops_per_s']:,.0f} | "
            f"{row['median_us'] / 1000:.2f} | {row['p99_us'] / 1000:.2f} | "
            f"{row['server_cpu_us'] / 1000:.2f} | {_ms(row.get('client_cpu_us'))} | "
            f"{row['ops_per_s'] / base:.2f}x |"
        )
    verdicts = []
    for kind in ("stream", "api"):
        name = f"gRPC, {_LABELS[kind]}"
        sixteen = [r for r in rows if r["clients"] == 16 and r["system"] == name]
        if sixteen:
            ratio = sixteen[0]["ops_per_s"] / base
            verdicts.append(f"{ratio:.2f}x with `{_LABELS[kind]}`")
            if kind == "stream":
                verdicts[-1] += f" ({'met' if ratio >= 0.5 else 'not met'})"
                same = [r for r in rows if r["system"].startswith("in-process Store, driven")]
                if same:
                    verdicts[-1] += (
                        f", {sixteen[0]['ops_per_s'] / same[0]['ops_per_s']:.2f}x the "
                        "in-process row driven as the gRPC clients"
                    )
    echo = [r for r in rows if r["system"] == f"gRPC, {_LABELS['echo']}"]
    if echo:
        # A client that waits for each answer pays the transport's round trip and the
        # store's commit round one after the other: 16 of them append about 16 times per
        # (echo p50 + in-process p50) at best, if the door cost nothing more.
        both_ms = (echo[0]["median_us"] + in_process["median_us"]) / 1000
        bound = 16 / both_ms * 1000
        verdicts.append(
            f"grpc.aio alone (echo, no store) reaches {echo[0]['ops_per_s'] / base:.2f}x "
            f"at p50 {echo[0]['median_us'] / 1000:.2f} ms; a client that waits for each "
            f"answer pays that round trip and the store's round (in-process p50 "
            f"{in_process['median_us'] / 1000:.2f} ms) one after the other, so 16 such "
            f"clients can expect about 16 / {both_ms:.2f} ms = {bound:,.0f}/s "
            f"({bound / base:.2f}x) at best"
        )
    if verdicts:
        lines += [
            "",
            "Goal: 16 gRPC clients reach at least half the in-process 16-session throughput: "
            + "; ".join(verdicts)
            + ".",
        ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.2f}"


def write_section(path: Path, section: str) -> None:
    """Replace the section between the markers in `path`, or append it."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    elif AFTER in text:
        text = text.replace(AFTER, AFTER + "\n\n" + section.rstrip("\n"), 1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


async def server_rows(
    base: Path, seconds: float, kinds: list[str], per_session: int
) -> tuple[Row, list[Row]]:
    """The in-process row (see `goal_rows`) and the rows of the three servers: the file
    store's, the in-memory store's, the echo.

    One event loop for all of them: grpc.aio keeps a poller thread per process that hands
    completions to the loop it first ran on, and a later `asyncio.run` left it calling a
    closed loop ("Event loop is closed" printed at exit).
    """
    with tempfile.TemporaryDirectory(dir=base) as tmp, server(Path(tmp)) as (target, pid):
        in_process, stream = await goal_rows(target, pid, seconds, base, per_session)
        rows = await grpc_rows(target, pid, seconds, kinds, measured={("stream", 16): stream})
    # The door's own ceiling: the same 16 clients against an in-memory store (no disk).
    with server(None) as (target, pid):
        memory = await grpc_rows(target, pid, seconds, ["api", "stream"], (16,))
    for row in memory:
        row["system"] += " (in-memory server)"
    rows += memory
    with server(None, echo=True) as (target, pid):
        rows += await grpc_rows(target, pid, seconds, ["echo"], (16,))
    return in_process, rows


def main() -> None:
    """Run the bench and print (and optionally write) the section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s per row instead of 5 s")
    parser.add_argument("--write", type=Path, help="write the section into this RESULTS.md")
    parser.add_argument(
        "--kinds",
        default="api,stream,remote,shared",
        help="comma-separated: api, stream, remote, shared",
    )
    parser.add_argument("--echo-server", action="store_true", help="run the bare echo server")
    opts = parser.parse_args()
    if opts.echo_server:
        asyncio.run(serve_echo())
        return
    seconds = 1.0 if opts.quick else 5.0
    base = HERE / ".data"
    base.mkdir(exist_ok=True)
    # The in-process row is the best of three runs (see `goal_rows`): one short run is
    # easily spoiled by a stall of the shared disk (one at 383/s, p99 952 ms, against
    # 11,735/s minutes before), and the best is the harder figure to reach half of.
    driven = [asyncio.run(same_driver_row(base, seconds)) for _ in range(TRIES)]
    rows = [max(driven, key=lambda row: row["ops_per_s"])]
    per_session = 40 if opts.quick else 200
    in_process, served = asyncio.run(server_rows(base, seconds, opts.kinds.split(","), per_session))
    rows += served
    info = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "python": f"{platform.machine()}, Python {platform.python_version()}",
        "seconds": f"{seconds:g}",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    section = table(in_process, rows, info)
    print(section)
    if opts.write:
        write_section(opts.write, section)


if __name__ == "__main__":
    main()

"""`python -m bench.server_http [--seconds S] [--write bench/RESULTS.md]`: HTTP load on loopback.

Starts a real `agentstore serve` (HTTP door only, file store with durability `fsync`) in a
subprocess and drives it with 16 and then 64 concurrent clients, each appending one event
at a time to its own session over a kept-alive connection, for a fixed time. The same run
measures the in-process figures beside it: 16 and 64 tasks appending to 16 and 64 sessions
of a `Store` in this process. Everything stays on 127.0.0.1 and stops by itself.

The client (a minimal keep-alive HTTP/1.1 client on asyncio) runs in this process and
shares the machine's cores with the server, so the HTTP figures are a floor: a client on
another machine would leave the server more CPU. The server's CPU time per append is
reported too: it is what bounds throughput on a busy machine.

With `--write FILE` the results replace the "Server: HTTP/JSON" part of FILE's "## Server"
section (between its markers), and the rest of the file is left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

import agentstore

BEGIN = "<!-- server-http:begin -->"
END = "<!-- server-http:end -->"
CLIENTS = (16, 64)


def _start_server(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentstore_cli",
                "serve",
                "--data-dir",
                str(data_dir),
                "--http-port",
                "0",
                "--no-grpc",
                "--log-format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"the server did not start: {log.read_text()}")
    url: str = orjson.loads(line)["listening"]["http"]
    for _ in range(200):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, url


def _summary(setup: str, clients: int, latencies: list[float], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "setup": setup,
        "clients": clients,
        "events": len(ordered),
        "per_s": len(ordered) / wall if wall else 0.0,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        if ordered
        else 0.0,
    }


class _Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must not be the bottleneck.

    httpx spends more CPU per request than the server does (measured: about 1 ms against
    0.5 ms), and on a 2-core machine that would be the figure measured; this one sends a
    prepared request and reads the response by its Content-Length.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> _Connection:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _post(path: str, body: dict[str, Any]) -> bytes:
    data = orjson.dumps(body)
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def _sessions(url: str, count: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=30) as http:
        return [
            http.post("/v1/sessions", json={"name": f"bench-{count}-{i}"}).json()["id"]
            for i in range(count)
        ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _http_load(url: str, sids: list[str], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    body = {"type": "tool_called", "payload": {"tool": "search", "query": "BER MUC"}}

    async def client(sid: str) -> None:
        conn = await _Connection.open(url)
        raw = _post(f"/v1/sessions/{sid}/events", body)
        try:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                status, answer = await conn.request(raw)
                if status != 201:
                    raise SystemExit(f"append failed: {status} {answer[:200]!r}")
                latencies.append(time.perf_counter() - start)
        finally:
            conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(sid) for sid in sids))
    wall = time.perf_counter() - began
    return _summary("HTTP/JSON (agentstore serve)", len(sids), latencies, wall)


async def _in_process(data_dir: Path, clients: int, seconds: float) -> dict[str, Any]:
    async with agentstore.open(data_dir, pricing=False) as store:
        sids = [(await store.create_session(name=f"bench-{i}")).id for i in range(clients)]
        latencies: list[float] = []
        stop = time.perf_counter() + seconds

        async def task(sid: str) -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                event = agentstore.new_event("tool_called", {"tool": "search", "query": "BER MUC"})
                await store.append(sid, event)
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(task(sid) for sid in sids))
        wall = time.perf_counter() - began
    return _summary("in-process Store", clients, latencies, wall)


def run(seconds: float) -> list[dict[str, Any]]:
    """Run every configuration and return one row each."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="agentstore-bench-http-") as tmp:
        root = Path(tmp)
        proc, url = _start_server(root / "served", root / "server.log")
        try:
            for clients in CLIENTS:
                rows.append(asyncio.run(_in_process(root / f"local-{clients}", clients, seconds)))
                sids = _sessions(url, clients)
                before = _cpu_seconds(proc.pid)
                row = asyncio.run(_http_load(url, sids, seconds))
                spent = _cpu_seconds(proc.pid) - before
                row["server_cpu_ms"] = spent / row["events"] * 1000 if row["events"] else 0.0
                rows.append(row)
        finally:
            proc.terminate()
            proc.wait(30)
    return rows


def render(rows: list[dict[str, Any]], seconds: float) -> str:
    """Return the Markdown of the results."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        BEGIN,
        "### HTTP/JSON",
        "",
        f"`python -m bench.server_http` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"load {load}. Each client appends one event at a time to its own session "
        f"(durability `fsync`) for {seconds:g} s; the HTTP client runs on the same cores as "
        "the server.",
        "",
        "| setup | clients | events/s | p50 ms | p99 ms | server CPU ms/append |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['setup']} | {row['clients']} | {row['per_s']:,.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
            + (f"{row['server_cpu_ms']:.2f} |" if "server_cpu_ms" in row else "- |")
        )
    by = {(r["setup"].split()[0], r["clients"]): r["per_s"] for r in rows}
    ratios = [
        f"{n} clients: HTTP reaches {by[('HTTP/JSON', n)] / by[('in-process', n)]:.0%} "
        "of the in-process throughput"
        for n in CLIENTS
        if by.get(("in-process", n))
    ]
    lines += ["", "; ".join(ratios) + ".", END]
    return "\n".join(lines) + "\n"


def write(path: Path, section: str) -> None:
    """Put `section` into FILE's "## Server" section, replacing an earlier HTTP part."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        if "## Server" not in text:
            text = text.rstrip("\n") + "\n\n## Server\n\n"
        head, _, tail = text.partition("## Server\n")
        text = head + "## Server\n\n" + section + tail.lstrip("\n")
    path.write_text(text)


def main() -> None:
    """Parse the arguments, run, print the table and optionally write it into RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each run")
    parser.add_argument("--write", type=Path, help="update this RESULTS.md")
    args = parser.parse_args()
    rows = run(args.seconds)
    section = render(rows, args.seconds)
    print(section)
    if args.write is not None:
        write(args.write, section)


if __name__ == "__main__":
    main()

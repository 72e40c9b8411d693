"""Start a real `agentstore serve` (HTTP door only) in a subprocess, on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson


@dataclass
class ServerProcess:
    """A running server: its process, base URL, data directory and stderr log file."""

    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        """Return an httpx client for this server."""
        kwargs.setdefault("timeout", 15)
        return httpx.Client(base_url=self.url, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the server and return its exit code (kill it if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"the server ignored signal {sig} for {timeout}s") from None
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def rss_kib(self) -> int:
        """Return the server process's resident memory in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


def serve_command(*args: str) -> list[str]:
    """Return the command line of `agentstore serve ARGS` with this interpreter."""
    return [sys.executable, "-m", "agentstore_cli", "serve", *args]


@contextlib.contextmanager
def serving(data_dir: Path, *args: str) -> Iterator[dict[str, str]]:
    """Run `agentstore serve --data-dir DATA_DIR ARGS` in a process of its own; yield where
    it listens (its start-up line's `listening`: door -> `host:port`); stop it (SIGTERM) at
    the end. Its stderr goes to `server.log` beside DATA_DIR, shown if it does not start."""
    log = data_dir.parent / "server.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            serve_command("--data-dir", str(data_dir), *args),
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(60), f"the server printed nothing: {log.read_text()}"
        line = proc.stdout.readline()
        assert line, f"the server did not start: {log.read_text()}"
        yield orjson.loads(line)["listening"]
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def serving_grpc(data_dir: Path, *args: str) -> Iterator[str]:
    """`serving` with the gRPC door alone, on a free port: yield its `host:port`."""
    with serving(data_dir, "--grpc-port", "0", "--no-http", *args) as where:
        yield where["grpc"]


def start_server(
    data_dir: Path, *args: str, log: Path | None = None, timeout: float = 30
) -> ServerProcess:
    """Start `agentstore serve --data-dir DATA_DIR --http-port 0 --no-grpc ARGS`."""
    log = log if log is not None else data_dir.parent / f"{data_dir.name}-server.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            serve_command("--data-dir", str(data_dir), "--http-port", "0", "--no-grpc", *args),
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert proc.stdout is not None
    line = _read_line(proc, timeout)
    if not line:
        proc.wait(10)
        raise AssertionError(f"the server did not start: {log.read_text()}")
    # A server bound to every address is still reached over loopback only.
    url = orjson.loads(line)["listening"]["http"].replace("//0.0.0.0:", "//127.0.0.1:")
    server = ServerProcess(proc, url, data_dir, log)
    _wait_healthy(server, timeout)
    return server


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            raise AssertionError("the server printed nothing")
    return proc.stdout.readline()


def _wait_healthy(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    verify = not server.url.startswith("https")  # a test certificate is self-signed
    while True:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


@contextlib.contextmanager
def running(data_dir: Path, *args: str) -> Iterator[ServerProcess]:
    """Run a server for the duration of a `with` block."""
    server = start_server(data_dir, *args)
    try:
        yield server
    finally:
        server.stop()


def problem(response: httpx.Response) -> dict[str, Any]:
    """Return the problem JSON of an error response, checking its shape."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["type"] == f"urn:agentstore:error:{body['code']}"
    assert "Traceback" not in response.text
    return body

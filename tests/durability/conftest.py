"""Helpers for the durability tests: real child processes, real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("worker.py")


def start_worker(*args: str) -> subprocess.Popen[str]:
    """Start `worker.py` with `args`, talking over pipes (line-buffered text)."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def expect_line(proc: subprocess.Popen[str], prefix: str) -> str:
    """Read one line from a worker and check how it starts."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(prefix), f"worker said {line!r}, expected {prefix!r}"
    return line.strip()


def tell(proc: subprocess.Popen[str], message: str) -> None:
    """Send one line to a worker."""
    assert proc.stdin is not None
    proc.stdin.write(message + "\n")
    proc.stdin.flush()


def finish(proc: subprocess.Popen[str]) -> None:
    """Make sure a worker is gone and its pipes are closed."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()

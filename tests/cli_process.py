"""`agentstore` run as a real process (`python -m agentstore_cli`), for tests that need one:
PostgreSQL URLs, SIGKILL, exit codes and stderr as a shell sees them (a copy killed mid-way
and run again); and the smallest export document such tests import."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def agentstore_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI with `args` to the end; its output is captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "agentstore_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def copy_killed_then_rerun(
    src: str, dst: str, progressed: Callable[[], Awaitable[bool]]
) -> None:
    """Run `agentstore copy SRC DST`, SIGKILL it once `await progressed()` says so (it must
    not have finished by then), then run it again to the end (it must succeed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentstore_cli", "copy", src, dst],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None and not await progressed():
            pass  # each look is a query or a look at files: the copy runs meanwhile
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the copy finished before it was killed"
    again = agentstore_cli("copy", src, dst, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr


def one_event_export(
    created_at: str, event_time: str, *, name: str | None = None
) -> dict[str, Any]:
    """An `agentstore export` document of session "s-1" with one event "e-1", for
    `agentstore import`."""
    session: dict[str, Any] = {"id": "s-1", "created_at": created_at}
    if name is not None:
        session["name"] = name
    event = {
        "id": "e-1",
        "session_id": "s-1",
        "sequence_number": 1,
        "type": "custom",
        "payload": {},
        "timestamp": event_time,
        "metadata": {},
    }
    return {"session": session, "events": [event]}


# The CLI's own peak memory: VmHWM of the process after exec, read by the process itself
# at its end. Not ru_maxrss: Linux folds the parent's RSS at fork into the child's (a large
# pytest process makes every copy look as large as itself).
_PEAK_RUNNER = """
import sys
from agentstore_cli.app import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
sys.stderr.write("\\n" + hwm)
sys.exit(code)
"""


def agentstore_cli_peak(
    *args: str | Path, timeout: float = 300
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the CLI with `args` to the end (Linux); return it and its peak memory in MiB."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RUNNER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    rest, _, hwm = done.stderr.rstrip("\n").rpartition("\n")
    done.stderr = rest
    return done, int(hwm.split()[1]) / 1024  # "VmHWM:   123456 kB"

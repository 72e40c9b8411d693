"""`agentstore` run as a real process (`python -m agentstore_cli`), for tests that need one:
PostgreSQL URLs, SIGKILL, exit codes and stderr as a shell sees them; and the smallest export
document such tests import."""

from __future__ import annotations

import subprocess
import sys
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

"""`agentstore` run as a real process (`python -m agentstore_cli`), for tests that need one:
PostgreSQL URLs, SIGKILL, exit codes and stderr as a shell sees them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def agentstore_cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI with `args` to the end; its output is captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "agentstore_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )

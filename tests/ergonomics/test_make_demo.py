"""`make demo` installs only what the demo needs: agentstore itself, not the dev tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_installs_agentstore_without_extras() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # -n: print the commands without running them; -B: as on a fresh clone.
    done = subprocess.run(
        [make, "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    installs = [line for line in done.stdout.splitlines() if "pip install" in line]
    assert installs[-1].endswith("pip install --quiet -e .")
    assert not any("[" in line for line in installs), installs  # no extras: dev, docs, all
    assert "examples/flight_agent.py" in done.stdout

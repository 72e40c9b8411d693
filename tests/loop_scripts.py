"""Child processes for the loop-commit review tests: a script run with a deadline (a hang
fails the test instead of hanging the suite), and the patch that stops a loop in the turn
its flight is written and its sync submitted."""

from __future__ import annotations

import subprocess
import sys

import pytest

STOP_AFTER_LIFT = """
from agentstore.backends.file import loopcommits

# Stop the loop in the turn its flight is written and its sync submitted: no later turn
# (no `select`) can see the sync end and land it.
lift = loopcommits.LoopCommits._lift
stop_after_lift = False

def lift_then_stop(self, sid, requests):
    taken = lift(self, sid, requests)
    if taken and stop_after_lift:
        self.loop.stop()
    return taken

loopcommits.LoopCommits._lift = lift_then_stop
"""
"""Script text: sets `stop_after_lift = True` to stop the loop after its next flight."""


def run_script(script: str, *args: str, timeout: float = 20) -> list[str]:
    """Run `script` in a fresh interpreter; return its output lines.

    A child that runs past `timeout` fails the test (it hung); one that printed "no loop
    commits" skips it (no Linux AIO with eventfd here).
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"hung: {exc.stdout!r}") from None
    assert done.returncode == 0, done.stderr
    if done.stdout.startswith("no loop commits"):
        pytest.skip("no Linux AIO with eventfd here")
    return done.stdout.splitlines()

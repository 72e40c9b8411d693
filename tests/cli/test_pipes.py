"""A closed output pipe ends every command quietly with status 0 (as `cat`, `git log`, `jq`).

`agentstore replay ID | head -1` under `set -o pipefail` must not fail the pipeline.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import BIN, FLIGHT_ID, seed_session

AGENTSTORE = str(BIN / "agentstore")
TIMEOUT = 30  # a ceiling; each run takes well under a second

COMMANDS = [
    ["sessions"],
    ["sessions", "--format", "json"],
    ["sessions", "--format", "jsonl"],
    ["replay", FLIGHT_ID],
    ["replay", FLIGHT_ID, "--format", "json"],
    ["replay", FLIGHT_ID, "--format", "jsonl"],
    ["stats", FLIGHT_ID],
    ["stats", FLIGHT_ID, "--format", "json"],
    ["export", FLIGHT_ID],
    ["verify"],
    ["--help"],
    ["replay", "--help"],
    ["--version"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_closed_pipe_exits_0_quietly(flight: str, args: list[str]) -> None:
    # The reader is gone before the command writes a byte, so every write fails with
    # EPIPE: deterministic, unlike racing a real `head -1`.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [AGENTSTORE, *args], stdout=write_end, stderr=subprocess.PIPE, timeout=TIMEOUT
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, b"")


def test_head_under_pipefail(data_dir: Path) -> None:
    # Far more than a pipe buffer holds, so `head -1` closes the pipe mid-output.
    seed_session(data_dir, [("custom", {"i": "x" * 200}, {}, 0)] * 3000, session_id="many")
    for fmt in ("timeline", "json", "jsonl"):
        done = subprocess.run(
            [
                "bash",
                "-c",
                f'set -o pipefail; "$0" replay many --format {fmt} | head -1',
                AGENTSTORE,
            ],
            capture_output=True,
            timeout=TIMEOUT,
        )
        assert (done.returncode, done.stderr) == (0, b""), fmt
        assert len(done.stdout.splitlines()) == 1

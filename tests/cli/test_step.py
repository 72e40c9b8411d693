"""`replay --step`: the header knows the count, and change markers survive wide values."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pexpect

from tests.cli.conftest import BIN, FLIGHT_ID, seed_session

AGENTSTORE = str(BIN / "agentstore")
TIMEOUT = 30  # a ceiling for the child; nothing waits unless it fails
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _pager(*args: str, columns: int = 60) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "NO_COLOR": "1", "COLUMNS": str(columns)}
    return pexpect.spawn(
        AGENTSTORE,
        list(args),
        env=env,
        dimensions=(60, columns),
        timeout=TIMEOUT,
        encoding="utf-8",
    )


def _screen(child: pexpect.spawn) -> list[str]:
    """The lines of the last screen (up to the key help), without escape codes."""
    child.expect("q quit")
    return [ANSI.sub("", line).rstrip() for line in (child.before or "").splitlines()]


def test_markers_survive_values_wider_than_the_terminal(data_dir: Path) -> None:
    wide = "w" * 500
    seed_session(
        data_dir,
        [
            ("user_message", {"content": wide}, {}, 0),
            ("custom", {"text": wide + "!"}, {}, 1),
            ("user_message", {"content": "short now"}, {}, 2),
        ],
        session_id="wide",
    )
    child = _pager("replay", "wide", "--step")
    first = _screen(child)
    assert any("Step 1 of 3" in line for line in first)
    child.send("n")
    second = _screen(child)
    assert any(re.match(r"^\+ data\.custom +\{\"text\":\"w+…$", line) for line in second), (
        "\n".join(second)
    )
    assert any(re.match(r"^~ version +2$", line) for line in second), second
    child.send("n")
    third = _screen(child)
    assert any(re.match(r"^~ data\.user_message +", line) for line in third), third
    assert all(len(line) <= 60 for line in third)
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_step_count_with_filters(flight: str) -> None:
    assert flight == FLIGHT_ID
    child = _pager("replay", flight, "--step", "--type", "tool_called,error", columns=100)
    assert any("Step 1 of 3" in line for line in _screen(child))
    child.send("q")
    child.expect(pexpect.EOF)
    child = _pager("replay", flight, "--step", "--from-seq", "4", "--to-seq", "50", columns=100)
    assert any("Step 1 of 7" in line for line in _screen(child))
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()

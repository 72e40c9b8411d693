"""The installed console script in real processes: pipes, --follow, Ctrl-C, the pager."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson
import pexpect
import pytest

from tests.cli.conftest import BIN, FLIGHT_ID, seed_session

AGENTSTORE = str(BIN / "agentstore")
WRITER = str(Path(__file__).with_name("writer.py"))
TIMEOUT = 30  # generous: CI machines are slow; nothing here waits unless it fails


class Lines:
    """Read a pipe's lines in a thread, so a test can wait for each with a timeout."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(b"")

    def next(self) -> bytes:
        """Return the next line (b"" at EOF); fail the test after TIMEOUT seconds."""
        try:
            return self._queue.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no output within {TIMEOUT}s")

    def rest(self) -> bytes:
        """Return everything until EOF."""
        chunks = []
        while chunk := self.next():
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _start(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    procs.append(proc)
    return proc


def test_console_script_and_module(flight: str) -> None:
    for cmd in ([AGENTSTORE], [sys.executable, "-m", "agentstore_cli"]):
        done = subprocess.run([*cmd, "--version"], capture_output=True, timeout=TIMEOUT, check=True)
        assert done.stdout.startswith(b"agentstore ")
    failed = subprocess.run([AGENTSTORE, "replay", "nope"], capture_output=True, timeout=TIMEOUT)
    assert failed.returncode == 1
    assert failed.stderr == b"error: session 'nope' not found\n"


def test_json_pipes_into_json_tool(flight: str, procs: list[subprocess.Popen[bytes]]) -> None:
    producer = subprocess.Popen(
        [AGENTSTORE, "replay", flight[:6], "--format", "json"], stdout=subprocess.PIPE
    )
    procs.append(producer)
    assert producer.stdout is not None
    tool = subprocess.run(
        [sys.executable, "-m", "json.tool"],
        stdin=producer.stdout,
        capture_output=True,
        timeout=TIMEOUT,
    )
    producer.stdout.close()
    assert producer.wait(timeout=TIMEOUT) == 0
    assert tool.returncode == 0, tool.stderr
    events = orjson.loads(tool.stdout)
    assert [e["sequence_number"] for e in events] == list(range(1, 11))
    assert b"\x1b" not in tool.stdout


def test_timeline_in_a_pipe_has_no_colour(flight: str) -> None:
    done = subprocess.run(
        [AGENTSTORE, "replay", flight], capture_output=True, timeout=TIMEOUT, check=True
    )
    assert b"\x1b" not in done.stdout
    assert b"flight-search" in done.stdout


def test_closed_pipe_is_quiet(data_dir: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    seed_session(data_dir, [("custom", {"i": "x" * 200}, {}, 0)] * 3000, session_id="many")
    producer = _start(procs, AGENTSTORE, "replay", "many", "--format", "jsonl")
    assert producer.stdout is not None
    assert producer.stdout.readline().startswith(b'{"id"')
    producer.stdout.close()  # like `| head -1`
    producer.wait(timeout=TIMEOUT)
    assert producer.stderr is not None
    assert producer.stderr.read() == b""


@pytest.fixture
def interruptible() -> Iterator[None]:
    """Let the processes a test starts be stopped by Ctrl-C (SIGINT), as a user's are.

    A runner started in the background by a non-interactive shell (`cmd &`) ignores
    SIGINT, and its children inherit that: Python then installs no KeyboardInterrupt
    handler in them. A handler of our own here is reset to the default in a child.
    """
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("fmt", ["jsonl", "timeline"])
@pytest.mark.usefixtures("interruptible")
def test_follow_sees_another_process_appending(
    data_dir: Path, procs: list[subprocess.Popen[bytes]], fmt: str
) -> None:
    sid = seed_session(data_dir, [("user_message", {"content": "first"}, {}, 0)], session_id="live")
    follower = _start(procs, AGENTSTORE, "replay", sid[:3], "--follow", "--format", fmt)
    writer = _start(procs, sys.executable, WRITER, str(data_dir), sid)
    assert follower.stdout is not None
    assert writer.stdout is not None
    assert writer.stdin is not None
    seen = Lines(follower.stdout)
    written = Lines(writer.stdout)
    if fmt == "timeline":
        assert b"live" in seen.next()  # the header
    assert b"first" in seen.next()
    for n in range(2, 5):
        writer.stdin.write(f"message {n}\n".encode())
        writer.stdin.flush()
        assert written.next() == f"appended message {n}\n".encode()
        line = seen.next()
        assert f"message {n}".encode() in line
        if fmt == "jsonl":
            assert orjson.loads(line)["sequence_number"] == n
    # Ctrl-C ends --follow: exit 0, no traceback.
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=TIMEOUT) == 0
    rest = seen.rest()
    if fmt == "timeline":
        assert b"4 events" in rest  # the totals, printed on the way out
    assert follower.stderr is not None
    assert follower.stderr.read() == b""
    writer.stdin.write(b"quit\n")
    writer.stdin.close()
    assert writer.wait(timeout=TIMEOUT) == 0


def test_follow_stops_at_to_seq(data_dir: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    sid = seed_session(data_dir, [("custom", 1, {}, 0)], session_id="bounded")
    follower = _start(procs, AGENTSTORE, "replay", sid, "-f", "-o", "jsonl", "--to-seq", "2")
    writer = _start(procs, sys.executable, WRITER, str(data_dir), sid)
    assert follower.stdout is not None
    assert writer.stdin is not None
    seen = Lines(follower.stdout)
    assert orjson.loads(seen.next())["sequence_number"] == 1
    writer.stdin.write(b"two\nthree\n")
    writer.stdin.close()
    assert orjson.loads(seen.next())["sequence_number"] == 2
    assert follower.wait(timeout=TIMEOUT) == 0  # it ended by itself at --to-seq
    assert seen.rest() == b""


def _pager(*args: str) -> pexpect.spawn:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100", "LINES": "60"}
    return pexpect.spawn(
        AGENTSTORE, [*args], env=env, dimensions=(60, 100), timeout=TIMEOUT, encoding="utf-8"
    )


def test_step_pager_in_a_terminal(flight: str) -> None:
    child = _pager("replay", flight[:6], "--step")
    child.expect("Step 1 of")
    child.expect("Find flights from Berlin to Munich on Friday")
    child.send("n")
    child.expect("Step 2 of")
    child.expect("cheapest")
    child.send("\r")  # Enter
    child.expect("Step 3 of")
    child.expect(r"tool_calls(?:\s|\x1b\[[0-9;]*m)*1\s")  # the state after the call
    child.send("p")
    child.expect("Step 2 of")
    child.send("\x1b[C")  # right arrow
    child.expect("Step 3 of")
    child.send("g")
    child.expect("Step 1 of")
    child.send("p")
    child.expect(r"\(this is the first event\)")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_step_pager_highlights_changes_and_escapes_payloads(data_dir: Path) -> None:
    seed_session(
        data_dir,
        [
            ("user_message", {"content": "hi"}, {}, 0),
            ("custom", {"text": "\x1b]0;pwned\x07 [red]x[/red]"}, {}, 1),
        ],
        session_id="s",
    )
    child = _pager("replay", "s", "--step", "--from-seq", "2")
    child.expect("Step 1 of")
    child.expect(r"~.*version")  # a changed key is marked ~
    child.expect(r"\+.*data\.custom")  # a new one +
    child.send("n")
    child.expect(r"\(this is the last event\)")
    child.send("\x03")  # Ctrl-C quits cleanly too
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # (what pexpect read is only since the last expect; check a fresh run for the OSC)
    child = _pager("replay", "s", "--step", "--from-seq", "2")
    child.expect(r"\\u001b\]0;pwned\\u0007 \[red\]x\[/red\]")  # JSON escapes, shown
    assert "\x1b]0;pwned" not in (child.before or "")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()


def test_seed_is_the_flight_session(flight: str) -> None:
    assert flight == FLIGHT_ID


def test_step_pager_diffs_against_the_previous_step(data_dir: Path) -> None:
    seed_session(
        data_dir,
        [
            ("tool_called", {"tool": "t"}, {"tool_name": "t"}, 0),
            ("user_message", {"content": "skipped by the filter"}, {}, 1),
            ("error", {"error": "boom"}, {}, 2),
        ],
        session_id="filtered",
    )
    child = _pager("replay", "filtered", "--step", "--type", "tool_called,error")
    child.expect("Step 1 of")
    child.send("n")
    child.expect("Step 2 of")
    # The user message came between the two steps: its key is new since step 1.
    child.expect(r"\+.*data\.user_message")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

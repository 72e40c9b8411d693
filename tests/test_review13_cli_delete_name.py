"""Review 13: `agentstore delete` shows a session's name as text, never as terminal codes.

A session's name is whatever the agent gave it (often from a user's first message or an
LLM's summary). `replay`, `stats`, `sessions` and `update` escape it; `delete` wrote it
raw, in its confirmation prompt and in its "Deleted session ..." line: an OSC sequence
retitled the window, `ESC [2J` cleared the screen, a bidi override reversed the line.

Real CLI processes over a real data directory; the prompt on a real pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import agentstore
from tests.cli_process import agentstore_cli

EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m \u202eevil [bold]x[/bold]"
RAW = ["\x1b]", "\x1b[2J", "\x9b", "\u202e"]


def _seed(data_dir: Path) -> None:
    async def main() -> None:
        async with agentstore.open(data_dir) as store:
            await store.create_session(session_id="s-evil", name=EVIL)

    asyncio.run(main())


def _assert_inert(out: str) -> None:
    for raw in RAW:
        assert raw not in out, f"raw {raw!r} reached the terminal: {out!r}"


def test_delete_yes_prints_the_name_escaped(tmp_path: Path) -> None:
    _seed(tmp_path / "d")
    done = agentstore_cli("--data-dir", tmp_path / "d", "delete", "s-evil", "--yes")
    assert done.returncode == 0, done.stderr
    _assert_inert(done.stdout)
    assert "Deleted session s-evil (\\x1b]0;pwned" in done.stdout
    assert "[bold]x" in done.stdout  # markup shown as text (the line is cut at 80)


def test_the_confirmation_prompt_shows_the_name_escaped(tmp_path: Path) -> None:
    _seed(tmp_path / "d")
    parent, child = pty.openpty()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentstore_cli",
                "--data-dir",
                tmp_path / "d",
                "delete",
                "s-evil",
            ],
            stdin=child,
            stdout=child,
            stderr=child,
            env={**os.environ, "COLUMNS": "400", "TERM": "xterm"},
        )
        os.close(child)
        seen = b""
        deadline = time.monotonic() + 60
        while b"[y/N]" not in seen:
            assert time.monotonic() < deadline, f"no prompt: {seen!r}"
            ready, _, _ = select.select([parent], [], [], 1)
            if ready:
                seen += os.read(parent, 65536)
        os.write(parent, b"n\n")
        assert proc.wait(60) == 0
        while select.select([parent], [], [], 0.2)[0]:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # the child is gone: EIO on Linux
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(parent)
    text = seen.decode(errors="replace")
    _assert_inert(text)
    assert "Delete session s-evil (\\x1b]0;pwned" in text
    assert "Nothing deleted." in text

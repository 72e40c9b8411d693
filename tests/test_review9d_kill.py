"""Review 9d: SIGKILL of `agentstore copy` while it writes batch marks into a data
directory (an import written with marks, a session extended batch by batch): every session
is whole or absent, verify is clean, reopening cuts nothing as a torn tail, and the copy run
again completes it, byte for byte."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import agentstore_cli


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return agentstore_cli(*args, timeout=300)


async def _fill(store: agentstore.Store, sid: str, batches: int, size: int) -> None:
    for n in range(batches):
        events = [new_event("custom", {"n": n, "k": k, "pad": "p" * 200}) for k in range(size)]
        if n % 5 == 4:
            await store.append(sid, events[0])  # lone events between the batches
        else:
            await store.append_many(sid, events)


def _kill_when(args: list[str | Path], ready: Callable[[], bool]) -> None:
    """Run a copy and SIGKILL it once `ready()` (it has started writing)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentstore_cli", "copy", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None and not ready():
            pass  # watching the file system: the copy writes as fast as it can
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the copy finished before it could be killed"


def _logs(data: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data / "events").glob("*.jsonl"))}


async def _check_after_kill(src: Path, dst: Path) -> None:
    before = _logs(dst)
    assert before, "nothing was copied before the kill"
    for name, log in before.items():
        assert _logs(src)[name].startswith(log)  # whole lines of SRC's, none torn
    verified = _cli("verify", "--data-dir", dst)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    async with agentstore.open(dst) as store:  # a writer: recovers any torn tail
        for name in before:
            await store.get_session(name.removesuffix(".jsonl"))
    assert _logs(dst) == before
    assert not list((dst / "events").glob("*.torn-*"))
    again = _cli("copy", src, dst)
    assert again.returncode == 0, again.stderr
    assert _logs(dst) == _logs(src)
    assert _cli("verify", "--data-dir", dst).returncode == 0


@pytest.mark.slow
async def test_sigkill_while_an_import_with_marks_is_written(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    async with agentstore.open(src, durability="flush") as store:
        for _ in range(3):
            sid = (await store.create_session()).id
            await _fill(store, sid, 2000, 7)

    def writing() -> bool:  # the second session's import, the first one done
        events = dst / "events"
        done = list(events.glob("*.jsonl"))
        return bool(done) and any(p.stat().st_size > 0 for p in events.glob(".*.tmp-*"))

    _kill_when([src, dst], writing)
    await _check_after_kill(src, dst)


@pytest.mark.slow
async def test_sigkill_while_a_copy_extends_batch_by_batch(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    async with agentstore.open(src, durability="flush") as store:
        sid = (await store.create_session()).id
        await _fill(store, sid, 10, 3)
    assert _cli("copy", src, dst).returncode == 0
    async with agentstore.open(src, durability="flush") as store:
        await _fill(store, sid, 1500, 3)
    start = os.path.getsize(dst / "events" / f"{sid}.jsonl")

    def extending() -> bool:
        return os.path.getsize(dst / "events" / f"{sid}.jsonl") > start

    _kill_when([src, dst], extending)
    await _check_after_kill(src, dst)

"""Review 11 (loop commits): an append when the process has no descriptor to spare.

The first durable append of an event loop starts its loop commits, which need an eventfd.
Out of descriptors (EMFILE: a busy server), that `os.eventfd` raised, and the append failed
with a bare `OSError` although its log was open and the commit thread needs no new
descriptor to append to it (as it did before loop commits). Now the append takes the
commit thread, and the loop commits start on a later append once descriptors are free.

Run in a child process: it lowers its own descriptor limit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import asyncio, os, resource, sys
import agentstore
from agentstore import new_event

async def main():
    async with agentstore.open(sys.argv[1]) as store:
        await store.create_session(session_id="s")
        await store.get_events("s")  # its log is open
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            stored = await store.append("s", new_event("custom", {"i": 1}))
            print("no descriptor to spare", stored.sequence_number)
        except Exception as exc:
            print("no descriptor to spare", type(exc).__name__)
        for fd in held:
            os.close(fd)
        stored = await store.append("s", new_event("custom", {"i": 2}))
        print("later", stored.sequence_number)
    async with agentstore.open(sys.argv[1]) as store:
        print("reread", *[e.payload["i"] for e in await store.get_events("s")])

asyncio.run(main())
"""


def test_an_append_with_no_descriptor_to_spare_for_the_loops_eventfd(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["no descriptor to spare 1", "later 2", "reread 1 2"]

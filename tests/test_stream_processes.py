"""`stream(follow=True)` on the file backend sees events appended by another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio

import agentstore
from agentstore import new_event

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import agentstore

    async def main(path, session_id, count):
        async with agentstore.open(path) as store:
            for i in range(count):
                event = agentstore.new_event("custom", {"from": "child", "i": i})
                await store.append(session_id, event)
                # Wait for the parent's go-ahead before the next one, so the follower has to
                # wake up for each event rather than read them all in one go.
                if sys.stdin.readline() != "next\\n":
                    return

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_follow_sees_another_process(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {"from": "parent"}))
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), session.id, "5"],
            stdin=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        received: list[dict[str, object]] = []
        try:
            with anyio.fail_after(30):
                async for event in store.stream(session.id, follow=True):
                    received.append(event.payload)
                    if len(received) == 6:
                        break
                    if len(received) > 1:
                        child.stdin.write("next\n")
                        child.stdin.flush()
            child.stdin.write("next\n")
            child.stdin.close()
            assert child.wait(timeout=30) == 0
        finally:
            child.kill()
            child.wait()
        assert received == [{"from": "parent"}] + [{"from": "child", "i": i} for i in range(5)]
        # The state cache of this process notices the other process's events too.
        assert (await store.get_state(session.id)).event_count == 6

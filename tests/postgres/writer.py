"""A writer process for the many-hosts tests: append N events, retrying what fails.

    python tests/postgres/writer.py URL SESSION_ID COUNT TAG [BATCH]

Prints the id of every acknowledged event, one per line, then `done`. A failed append
(`StorageUnavailableError`: connection lost, server restarting) is retried with the same
event ids until it is acknowledged, as the docs tell users to.
"""

from __future__ import annotations

import asyncio
import sys
import time

import agentstore
from agentstore import new_event
from agentstore.errors import StorageUnavailableError


async def main(url: str, session_id: str, count: int, tag: str, batch: int) -> None:
    deadline = time.monotonic() + 60
    async with agentstore.open(url) as store:
        for start in range(0, count, batch):
            events = [
                new_event("custom", {"writer": tag, "n": n})
                for n in range(start, min(start + batch, count))
            ]
            while True:
                try:
                    stored = await store.append_many(session_id, events)
                    break
                except StorageUnavailableError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)  # back-off before the retry
            assert [e.id for e in stored] == [e.id for e in events]
            print("\n".join(e.id for e in stored), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    url, sid, count, tag = sys.argv[1:5]
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    asyncio.run(main(url, sid, int(count), tag, batch))

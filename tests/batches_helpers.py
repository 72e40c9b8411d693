"""Sessions with every kind of batch mark, and a data directory's log bytes: for the tests
that copy sessions between stores and compare the lines byte for byte."""

from __future__ import annotations

from pathlib import Path

import agentstore
from agentstore import new_event


async def append_mixed(store: agentstore.Store, sid: str, start: int) -> None:
    """Batches of 3 and 2, an event alone, a batch of 1: every kind of mark and none."""
    await store.append_many(sid, [new_event("custom", {"n": start + n}) for n in range(3)])
    await store.append(sid, new_event("custom", {"alone": start}))
    await store.append_many(sid, [new_event("custom", {"m": start + n}) for n in range(2)])
    await store.append_many(sid, [new_event("custom", {"one": start})])


def log_bytes(data: Path, sid: str) -> bytes:
    """The session's event log in the data directory `data`, as stored."""
    return (data / "events" / f"{sid}.jsonl").read_bytes()

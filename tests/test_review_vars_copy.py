"""A writable copy made from a read event's fields has metadata it can change."""

from __future__ import annotations

from pathlib import Path

import agentstore
from agentstore import Event, new_event


async def test_a_writable_copy_from_vars_has_changeable_metadata(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("custom", 1))
    async with agentstore.open(tmp_path) as store:
        (stored,) = await store.replay(sid)
    writable = Event(**vars(stored))
    writable.metadata.model = "mine"  # InvalidEventError: shared empty Metadata is read-only
    assert writable.metadata.model == "mine"

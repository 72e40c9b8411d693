"""Review 11 (loop commits): sessions once appended to by several tasks at once are not
remembered for ever.

Such a session is left to the commit thread for its next appends (`_STAY_CONTENDED`);
the engine remembered it until it had made those appends, so every session contended
once and then left idle (an agent's run that ended: a server sees millions) stayed in
its memory for the life of the store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.backends.file import FileBackend, loopcommits


async def test_contended_sessions_are_remembered_up_to_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loopcommits, "_MAX_CONTENDED", 8, raising=False)  # 1024 by default
    async with agentstore.open(tmp_path, snapshot_interval=0) as store:
        backend = store.backend
        assert isinstance(backend, FileBackend)
        sids = []
        for _ in range(40):
            sid = (await store.create_session()).id
            sids.append(sid)
            await store.append(sid, new_event("custom", {"i": 0}))  # opens the log
            stored = await asyncio.gather(
                *(store.append(sid, new_event("custom", {"i": i})) for i in (1, 2, 3))
            )
            assert [e.sequence_number for e in stored] == [2, 3, 4]
        here = backend._commits._here
        if here is None:
            pytest.skip("no Linux AIO with eventfd here")
        assert 0 < len(here._contended) <= 8
        assert list(here._contended) == sids[-len(here._contended) :]  # the newest kept
        for sid in sids:  # a forgotten session appends as before
            assert (await store.append(sid, new_event("custom", {"i": 4}))).sequence_number == 5
    async with agentstore.open(tmp_path) as store:
        for sid in sids:
            assert [e.payload["i"] for e in await store.get_events(sid)] == [0, 1, 2, 3, 4]

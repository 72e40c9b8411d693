"""Review 8b: a SyncStore's caller-thread append (agentstore/store/blocking.py) that fails
because the backend lost its view of the session (a log restored from a backup) marks the
session's cached state to be dropped by the loop (d22b3f1). The loop drops it when it next
drains, but a call through the portal drains first only when appends are waiting
(`CallerThreadAppends.pending`): a get_state right after the failed append ran against the
stale cache and answered with the replaced log's state."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StorageError
from agentstore.testing.conformance.builders import comparable, fold, llm


def test_sync_state_right_after_an_append_found_the_log_restored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with agentstore.open_sync(data) as a, agentstore.open_sync(data) as b:
        sid = f"again-{uuid.uuid4().hex[:12]}"
        a.create_session(session_id=sid)
        a.append(sid, new_event("custom", {"n": 0}))
        log = data / "events" / f"{sid}.jsonl"
        backup = log.read_bytes()
        a.append(sid, llm(tokens_in=100, cost=0.5))
        assert a.get_state(sid).tokens.input == 100  # cached at 2
        restored = tmp_path / "restored.jsonl"
        restored.write_bytes(backup)
        restored.replace(log)  # the backup, as another program puts it back
        b.append(sid, new_event("custom", {"n": 1}))  # the log goes on: 2 events
        with pytest.raises(StorageError):
            a.append(sid, new_event("custom", {"n": 2}))  # on this thread: the view is dropped
        assert comparable(a.get_state(sid)) == comparable(fold(sid, b.get_events(sid)))

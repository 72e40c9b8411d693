"""Review 8b: a SyncStore's caller-thread append (agentstore/store/blocking.py) that fails
because the backend lost its view of the session (a log restored from a backup) marks the
session's cached state to be dropped by the loop (d22b3f1). The loop drops it when it next
drains, but a call through the portal drains first only when appends are waiting
(`CallerThreadAppends.pending`): a get_state right after the failed append ran against the
stale cache and answered with the replaced log's state."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from agentstore.errors import StorageError
from agentstore.testing.conformance.builders import comparable, fold
from tests.test_review8_incarnation import restore_log_from_backup


def test_sync_state_right_after_an_append_found_the_log_restored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with agentstore.open_sync(data) as a, agentstore.open_sync(data) as b:
        sid = restore_log_from_backup(a, b, data, tmp_path)
        with pytest.raises(StorageError):
            a.append(sid, new_event("custom", {"n": 2}))  # on this thread: the view is dropped
        assert comparable(a.get_state(sid)) == comparable(fold(sid, b.get_events(sid)))

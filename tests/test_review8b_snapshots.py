"""Review 8b: snapshots refused since review 8 dated them (ae2fecc: a snapshot older than
its session's created_at is another session's). A session's created_at is the clock of the
host that made it (an import keeps the exporting host's); a snapshot a store folds itself
(`StateKeeper.save_snapshot`, when its cache is not at the version: a store that did not
read the session first) was dated by this host's clock alone. A session made on a host
whose clock is ahead, or imported from one, then never had a snapshot any store would
read: every cold read folded the whole session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from agentstore import Store, new_event
from agentstore.backends.base import Backend
from agentstore.backends.file import FileBackend
from agentstore.backends.memory import MemoryBackend
from agentstore.events import Event
from agentstore.state import State, default_reducer

_folded: list[int] = []


def _counting_reducer(state: State, event: Event) -> State:
    """The default reducer, counting the events it folds."""
    _folded.append(event.sequence_number)
    return default_reducer(state, event)


@pytest.fixture(params=["memory", "file"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Backend]:
    """Backends over one storage: each call is another store's backend."""
    if request.param == "memory":
        shared = MemoryBackend()
        return lambda: shared
    return lambda: FileBackend(tmp_path / "data")


async def test_snapshot_of_a_session_made_on_a_host_whose_clock_is_ahead_is_read(
    storage: Callable[[], Backend],
) -> None:
    # The session was exported on a host whose clock is an hour ahead (its created_at is
    # in this host's future; its events, dated by their own appends, predate it) and is
    # imported here. A store that did not read it appends across the snapshot interval:
    # it folds the snapshot's state itself. A cold store must then start from it.
    async with await Store(MemoryBackend()) as there:
        made = await there.create_session(name="from a host an hour ahead")
        await there.append_many(made.id, [new_event("custom", {"n": n}) for n in range(2)])
        events = await there.get_events(made.id)
    ahead = made.model_copy(update={"created_at": made.created_at + timedelta(hours=1)})
    writer = await Store(storage(), snapshot_interval=4, reducer=_counting_reducer)
    try:
        await writer.import_session(ahead, events)
        await writer.append_many(made.id, [new_event("custom", {"n": n}) for n in (2, 3)])
    finally:
        await writer.close()  # its snapshot write ends
    cold = await Store(storage(), snapshot_interval=4, reducer=_counting_reducer)
    try:
        _folded.clear()
        assert (await cold.get_state(made.id)).version == 4
        assert _folded == []  # from the snapshot at 4: nothing to fold
    finally:
        await cold.close()

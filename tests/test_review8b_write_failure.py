"""Review 8b: since 2f7c590 a store drops what it cached of a session on any StorageError
of an append or a head read, to forget a log replaced under it (restored from a backup).
A write the file system refuses (a full disk, a file size limit: "nothing was appended")
is a StorageError too: after each one the next get_state folds the whole session again.
An agent that retries while the disk is full pays a cold fold per retry (measured on a
1 MiB tmpfs filled up: 2,000 events folded again after every failed append)."""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import pytest

from agentstore import Store, new_event
from agentstore.backends.file import FileBackend
from agentstore.errors import StorageError
from agentstore.events import Event
from agentstore.state import State, default_reducer

_folded: list[int] = []


def _counting_reducer(state: State, event: Event) -> State:
    """The default reducer, counting the events it folds."""
    _folded.append(event.sequence_number)
    return default_reducer(state, event)


async def test_a_refused_write_does_not_cost_a_cold_fold(tmp_path: Path) -> None:
    async with await Store(
        FileBackend(tmp_path / "data"), reducer=_counting_reducer, snapshot_interval=0
    ) as store:
        session = await store.create_session()
        sid = session.id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in range(2000)])
        assert (await store.get_state(sid)).version == 2000  # cached
        log = tmp_path / "data" / "events" / f"{sid}.jsonl"
        # The kernel refuses to grow any file past its size now (EFBIG): a full disk, as
        # far as this log is concerned.
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (log.stat().st_size + 100, limits[1]))
        try:
            with pytest.raises(StorageError):
                await store.append(sid, new_event("custom", {"pad": "x" * 10_000}))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            signal.signal(signal.SIGXFSZ, previous)
        _folded.clear()
        assert (await store.get_state(sid)).version == 2000
        assert _folded == []  # the cached state answers: nothing was appended

"""A flight whose AIO sync fails at once is handed back once.

`Syncs.start` submits the round's flights, then hands back at once every flight whose
`needs_sync` is False ("nothing to sync, or failed already"). But the AIO reaper may
already have finished one of the submitted flights: a failed `fdatasync` sets
`flight.error`, which makes `needs_sync` False, so the commit thread hands it back a
second time. (A file with a recorded writeback error fails its next fdatasync at once, with
no I/O; ctypes releases the interpreter lock during io_submit, so the reaper can run
then.) A second landing undoes the group again and releases a log mutex it no longer
holds, or one a newer flight of the same log holds now. (Found by review; the hand-backs
are now decided before the submit.)

No filesystem here can fail a sync on demand, so the test has the kernel's answer arrive
during the submit, as the reaper would hand it back when it wins that race.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from agentstore.backends.file import aiosync, syncing


class _Group:
    """What a Flight needs of its log's group: a descriptor and written lines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = True


def test_a_flight_whose_sync_failed_at_once_lands_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if aiosync.AioSyncer.open(lambda _: None) is None:
        pytest.skip("no Linux AIO here")

    def submit(self: Any, items: list[tuple[int, Any]]) -> list[Any]:
        # The reaper wins the race: each sync comes back failed before submit returns.
        self._done([(token, OSError(errno.EIO, "Input/output error")) for _, token in items])
        return []

    monkeypatch.setattr(aiosync.AioSyncer, "submit", submit)
    fds = [os.open(tmp_path / f"log{i}", os.O_CREAT | os.O_RDWR) for i in range(2)]
    try:
        landed: list[syncing.Flight] = []
        syncs = syncing.Syncs(landed.append, aio=True)
        flights = [syncing.Flight(_Group(fd), [], []) for fd in fds]  # type: ignore[arg-type]
        syncs.start(flights)
        syncs.stop()
        assert [landed.count(f) for f in flights] == [1, 1]
    finally:
        for fd in fds:
            os.close(fd)

"""Snapshot writes behind the appends that made them due.

A snapshot is a cache that can be lost (the log is the truth). So the append that crosses
the snapshot interval returns as soon as its events are stored: it captures the state's
JSON (memory only, in order with the session's other appends) and hands the write to the
`SnapshotWriter`, which runs it as a task on the event loop. One write per session is in
flight at a time. A newer snapshot that falls due meanwhile replaces any still waiting, so
a slow disk never lets an older snapshot land over a newer one, nor queues more than one
per session.

A store reads its own snapshots: `get_state` and deleting a session wait for that
session's write in flight, `verify` for every write, and closing the store finishes every
write and starts no more. Off asyncio (on trio) there is no loop to hand a task to: the
append writes its snapshot itself before it returns.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from agentstore.backends.base import SnapshotRecord
from agentstore.store.states import StateKeeper

if TYPE_CHECKING:  # `import agentstore` must not load asyncio; a running loop already has
    import asyncio

__all__ = ["SnapshotWriter"]


class SnapshotWriter:
    """Writes a store's snapshots on its event loop, after the appends return."""

    def __init__(self, states: StateKeeper) -> None:
        self._states = states
        self._running: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, tuple[int, SnapshotRecord | None]] = {}
        self._closing = False

    @property
    def busy(self) -> bool:
        """True while any write is in flight (a cheap test before `settled`)."""
        return bool(self._running)

    def start(
        self,
        session_id: str,
        version: int,
        record: SnapshotRecord | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Write a snapshot on `loop` (call on the loop's thread); see `write`."""
        if self._closing:
            return  # an append that raced `close`: its snapshot is a cache, and skipped
        if session_id in self._running:
            waiting = self._waiting.get(session_id)
            if waiting is None or waiting[0] < version:
                self._waiting[session_id] = (version, record)
            return
        task = loop.create_task(self._run(session_id, version, record))
        self._running[session_id] = task

    async def write(self, session_id: str, version: int, record: SnapshotRecord | None) -> None:
        """Write the snapshot of a session at `version` behind the caller.

        `record` is what `StateKeeper.capture_snapshot` took (None: the state at `version`
        is folded first). Returns at once on asyncio; elsewhere after the write.
        """
        loop = _running_asyncio_loop()
        if self._closing:
            return  # see `start`
        if loop is None:
            await self._states.save_snapshot(session_id, version, record)
        else:
            self.start(session_id, version, record, loop)

    async def _run(self, session_id: str, version: int, record: SnapshotRecord | None) -> None:
        try:
            while True:
                # Logs a failure and returns: a lost snapshot only slows the next cold fold.
                await self._states.save_snapshot(session_id, version, record)
                waiting = self._waiting.pop(session_id, None)
                if waiting is None:
                    return
                version, record = waiting
        finally:
            del self._running[session_id]
            self._waiting.pop(session_id, None)  # cancelled: a later append makes another

    async def settled(self, session_id: str) -> None:
        """Wait until no snapshot write of the session is in flight."""
        task = self._running.get(session_id)
        if task is not None:
            import asyncio

            # Shielded: a caller cancelled while it waits must not cancel the write.
            await asyncio.shield(task)

    async def settle_all(self) -> None:
        """Wait for every write in flight (started before this call or while it waits)."""
        while self._running:
            import asyncio

            await asyncio.wait(list(self._running.values()))

    async def close(self) -> None:
        """Wait for every write in flight, and start no more (the store is closing)."""
        self._closing = True
        await self.settle_all()


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop, or None (on trio), without importing asyncio."""
    module = sys.modules.get("asyncio")
    if module is None:
        return None
    try:
        loop: asyncio.AbstractEventLoop = module.get_running_loop()
    except RuntimeError:
        return None
    return loop

"""Waking `wait_for_append` at once for appends made in this process, from any thread.

Waiters are keyed by (storage, session): every `FileBackend` of one data directory shares
the resolved directory as its key, a `MemoryBackend` its own identity, so an append through
any of them wakes the waiters of all of them, on whichever event loop (and thread: a
`SyncStore` runs its own) they wait. Other processes' appends are found by polling with
back-off, as the base class does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import ClassVar

_Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Event]

__all__ = ["AppendRegistry"]


class AppendRegistry:
    """Waiters per (storage key, session), woken by `notify`."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _waiters: ClassVar[defaultdict[tuple[str, str], set[_Waiter]]] = defaultdict(set)

    @classmethod
    @contextlib.contextmanager
    def waiting(cls, root: str, session_id: str) -> Iterator[asyncio.Event | None]:
        """Register the current task as a waiter; yield its event (None outside asyncio)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: poll only
            yield None
            return
        item = (loop, asyncio.Event())
        key = (root, session_id)
        with cls._lock:
            cls._waiters[key].add(item)
        try:
            yield item[1]
        finally:
            with cls._lock:
                waiters = cls._waiters.get(key)
                if waiters is not None:
                    waiters.discard(item)
                    if not waiters:
                        del cls._waiters[key]

    @classmethod
    def notify(cls, root: str, session_id: str) -> None:
        """Wake every waiter of a session (call from any thread)."""
        key = (root, session_id)
        if key not in cls._waiters:
            return  # the common case, every append: nobody follows (a dict lookup is atomic)
        with cls._lock:
            waiters = list(cls._waiters.get(key, ()))
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                loop.call_soon_threadsafe(event.set)

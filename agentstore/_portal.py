"""The event-loop thread behind each `SyncStore`, and the exit hook for forgotten ones."""

from __future__ import annotations

import atexit
import contextlib
import threading
import warnings
import weakref
from concurrent.futures import Future
from typing import Protocol

import anyio
from anyio.from_thread import BlockingPortal

__all__ = ["LIVE", "start_portal"]


class Closeable(Protocol):
    """What the exit hook needs of a store."""

    def close(self) -> None: ...


LIVE: weakref.WeakSet[Closeable] = weakref.WeakSet()
"""Every open `SyncStore`: the atexit hook closes those a script forgot."""


def start_portal() -> tuple[BlockingPortal, threading.Thread]:
    """Start an event loop in a daemon thread, with a blocking portal into it.

    Not `anyio.from_thread.start_blocking_portal`: a context manager held by an object
    that is never closed is finalised at interpreter shutdown, when it waits forever on
    a loop thread that no longer runs (a script that forgot `close()` would hang).
    """
    future: Future[BlockingPortal] = Future()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            future.set_result(portal)
            await portal.sleep_until_stopped()

    def run() -> None:
        try:
            anyio.run(serve)
        except BaseException as exc:  # reported to the caller waiting on the future
            if not future.done():
                future.set_exception(exc)

    thread = threading.Thread(target=run, name="agentstore-sync", daemon=True)
    thread.start()
    return future.result(), thread


@atexit.register
def _close_forgotten_stores() -> None:
    # atexit hooks run while daemon threads still do, so each store closes cleanly
    # (its lock released, its files closed) and the interpreter exits.
    for store in list(LIVE):
        warnings.warn(
            f"agentstore.SyncStore {store!r} was never closed; closing it at exit "
            "(use `with` or `store.close()`)",
            ResourceWarning,
            stacklevel=1,
        )
        with contextlib.suppress(Exception):
            store.close()

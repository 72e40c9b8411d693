"""A pool of worker threads with one cheap hop each way (the store's append path until the
commit thread of `agentstore/backends/file/commits.py` replaced it; kept to time the hop).

`anyio.to_thread.run_sync` costs about twice a bare hop (a cancel scope, a limiter, a
`concurrent.futures` round trip); a durable append is one `write` and one `fdatasync`, so
that overhead is most of its cost after the sync itself. On asyncio this pool hands the
call to an idle thread through a `queue.SimpleQueue` and wakes the loop with
`call_soon_threadsafe`; elsewhere (trio) it falls back to `anyio.to_thread.run_sync`.

Semantics match `anyio.to_thread.run_sync`'s default: a call that started runs to the end,
and a task cancelled while waiting raises `CancelledError` only once its call has
finished, so the caller's locks still cover the write. Threads are started on demand (one
per concurrent call, up to `max_threads`, so that appends to different sessions sync in
parallel) and stopped by `close()`; a call made after `close()` raises `StoreClosedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from agentstore.errors import StoreClosedError

__all__ = ["ThreadPool"]

T = TypeVar("T")

_STOP = None


def _deliver(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class ThreadPool:
    """Run blocking calls on worker threads; see the module docstring."""

    def __init__(self, max_threads: int = 16, name: str = "agentstore-io") -> None:
        self._max = max_threads
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        """Calls in flight (counted on the event loop's thread only)."""
        self._pid = os.getpid()
        self._closed = False

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            loop, fut, fn, args = item
            try:
                value, ok = fn(*args), True
            except BaseException as exc:  # delivered to the awaiting task
                value, ok = exc, False
            # A closed loop (RuntimeError) means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, fut, ok, value)
            del item, loop, fut, value

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's threads do not exist here
            self._queue = queue.SimpleQueue()
            self._threads = []
            self._busy = 0
            self._pid = os.getpid()
        # Every thread is (or is about to be) busy with an earlier call: add one.
        if self._busy >= len(self._threads) < self._max:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Call `fn(*args)` on a worker thread and return its result."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): anyio's way
            return await anyio.to_thread.run_sync(fn, *args)
        if self._closed:
            raise StoreClosedError("the store was closed; nothing was written")
        self._ensure_thread()
        fut: asyncio.Future[T] = loop.create_future()
        self._busy += 1
        self._queue.put((loop, fut, fn, args))
        try:
            # shield: cancelling the task must not cancel `fut`, which the worker resolves.
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            while not fut.done():  # the call runs on: wait for it, then re-raise
                try:
                    await asyncio.shield(fut)
                except asyncio.CancelledError:
                    continue
                except BaseException:
                    break
            raise
        finally:
            self._busy -= 1

    def close(self) -> None:
        """Stop the worker threads once the queued calls are done (does not wait)."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
        self._threads = []

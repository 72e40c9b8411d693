"""Hand-offs to an event loop from other threads, one wake-up for many.

`LoopInbox` collects items posted from any thread and hands them, in the order they were
posted, to a function on its loop's thread, waking the loop once for however many arrive
before it gets to them (the commit thread's rounds answered while the loop is busy cost
one wake-up, not one each). `Request` is one `append` waiting on a loop for its log's
flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from agentstore.backends.base import AppendResult, PendingEvent

__all__ = ["LoopInbox", "Outcome", "Request", "resolve"]

T = TypeVar("T")

Outcome = tuple[bool, Any]
"""(True, the `AppendResult`) or (False, the exception to raise)."""


class Request:
    """One `append` call waiting for its log's next flight."""

    __slots__ = (
        "answered",
        "batch",
        "elsewhere",
        "expected_seq",
        "future",
        "loop",
        "outcome",
        "session_id",
    )

    def __init__(
        self,
        session_id: str,
        batch: Sequence[PendingEvent],
        expected_seq: int | None,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[AppendResult],
    ) -> None:
        self.session_id = session_id
        self.batch = batch
        self.expected_seq = expected_seq
        self.loop = loop
        self.future = future
        self.outcome: Outcome | None = None
        self.answered = False
        """Set on the loop's thread once `resolve` has seen the outcome."""
        self.elsewhere = False
        """Sent to the commit thread by its loop's `LoopCommits` (see `loopcommits.py`)."""


def resolve(requests: Sequence[Request]) -> None:
    """Resolve the requests' futures, in order (call on their loop's thread)."""
    for request in requests:
        future, outcome = request.future, request.outcome
        request.answered = True
        if future.done() or outcome is None:  # cancelled: its task knows (`answered`)
            continue
        ok, value = outcome
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class LoopInbox(Generic[T]):
    """Items posted from any thread, handed to `handle` on the loop's thread in order."""

    __slots__ = ("_handle", "_items", "_lock", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Callable[[list[T]], None]):
        self.loop = loop
        self._handle = handle
        self._items: list[T] = []
        self._lock = threading.Lock()

    def post(self, items: list[T]) -> None:
        """Queue items; wake the loop unless a hand-over is already due."""
        with self._lock:
            due = bool(self._items)
            self._items += items
        if not due:
            # A closed loop (RuntimeError) means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        self._handle(items)

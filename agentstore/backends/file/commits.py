"""Group commit: one commit thread writes what every waiting append of a store brings.

An append queues a request and waits. The commit thread takes every request waiting (a
round), groups them per log and, for each log in turn, plans its requests in the order
they came under the log's lock and writes them with one `write` (see `group.py`). Then it
makes every written log durable: one `fdatasync` per log, run in parallel when the round
touched several logs (the disk does parallel syncs several times faster than one after
another), by the kernel's AIO where it works, else on sync threads (see `syncing.py`).
Only then is any request of the round acknowledged, with
one wake-up of the event loop for everything answered before the loop gets to it (see
`inbox.py`), instead of one per append.

Where Linux AIO can tell an event loop that a sync ended, an asyncio append to a log that
is open and idle does not come here at all: its loop writes it and lands it (see
`loopcommits.py`), and the appends that cannot be made that way come here.

So appends that queue up behind a sync in progress (many tasks on one session, or many
sessions) cost one write and one sync per round, and a lone append costs what it did
with a worker thread: one hop each way around its write and sync. Results reach the
waiting tasks in the order of their sequence numbers, which lets the store fold them
into its cache without a lock of its own (`Backend.appends_complete_in_order`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import weakref
from collections.abc import Callable, Sequence

import anyio.to_thread

from agentstore.backends.base import AppendResult, PendingEvent
from agentstore.backends.file.group import LogGroup
from agentstore.backends.file.inbox import LoopInbox, Request, resolve
from agentstore.backends.file.log import Logs, LogView
from agentstore.backends.file.loopcommits import LoopCommits
from agentstore.backends.file.syncing import Flight, Syncs
from agentstore.errors import StorageError, StoreClosedError

__all__ = ["CommitQueue"]

MAX_ROUND = 1024
"""The most messages the commit thread takes at once: bounds the wait of the first."""

USE_AIO = True
"""Sync a round's logs through Linux AIO where it works (see `syncing.py`); else on threads."""

USE_LOOP = True
"""Commit asyncio appends on their loop's thread where AIO can wake it (`loopcommits.py`)."""

_STOP = None

_Message = Request | Flight | None


class CommitQueue:
    """The commit thread of one `FileBackend` (see the module docstring)."""

    def __init__(
        self,
        logs: Logs,
        *,
        fsync: bool,
        closed: Callable[[], bool],
        fallback: Callable[[str, Sequence[PendingEvent], int | None], AppendResult],
    ) -> None:
        self._logs = logs
        self._fsync = fsync
        self._closed = closed
        # Appends outside asyncio (trio) run alone on a worker thread, this way.
        self._fallback = fallback
        self._stopped = False
        self._start_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._syncs = Syncs(self._queue.put, aio=USE_AIO)
        self._deferred: list[Request] = []
        self._inbox: LoopInbox[Request] | None = None
        """The inbox of the loop answered last (a store seldom serves two loops)."""
        self._here: LoopCommits | None = None
        """The loop that commits its own appends (the first loop to append; see `_on`)."""
        self._not_here: weakref.ref[asyncio.AbstractEventLoop] | None = None
        """A loop on which `LoopCommits` could not start: not tried again."""

    # --- the event-loop side -----------------------------------------------------------

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """Queue an append and wait for it to be durable (or refused).

        Cancelling the waiting task does not withdraw the append, which the commit thread
        may be writing: the task waits for the outcome, then raises `CancelledError`, so
        the append is whole or absent and the caller's locks still covered it.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): the append runs alone on a worker thread
            return await anyio.to_thread.run_sync(self._fallback, session_id, batch, expected_seq)
        if self._stopped:
            raise StoreClosedError("the store was closed; nothing was appended")
        future: asyncio.Future[AppendResult] = loop.create_future()
        request = Request(session_id, batch, expected_seq, loop, future)
        here = self._on(loop)
        if here is None or not here.take(request):
            if here is not None:
                here.sent_elsewhere(request)
            self._ensure_thread()
            self._queue.put(request)
        try:
            # The future itself, not a shield of it: one trip through the loop fewer.
            return await future
        except asyncio.CancelledError:
            # Cancelling the task cancelled `future`, but not the append: wait on a fresh
            # future for its outcome (`resolve` runs on this thread, so it resolves
            # whichever future the request holds when it runs), then re-raise.
            if not request.answered:
                waiter: asyncio.Future[AppendResult] = loop.create_future()
                request.future = waiter
                while not waiter.done():
                    try:
                        await asyncio.shield(waiter)
                    except asyncio.CancelledError:
                        continue
                    except BaseException:
                        break
            raise
        finally:
            if request.elsewhere and here is not None:
                here.answered(request)

    def _on(self, loop: asyncio.AbstractEventLoop) -> LoopCommits | None:
        """The `LoopCommits` of `loop` (started on its first append), or None: the loop
        appends through the commit thread (no AIO wake-ups, an open loop of another thread
        has it, or no durability to wait for). A loop of this thread takes it over from
        a closed loop or a stopped one of this thread, whose flights it lands first."""
        here = self._here
        if here is not None and here.loop is loop and self._pid == os.getpid():
            return here
        if not (self._fsync and USE_LOOP and USE_AIO):
            return None
        if self._not_here is not None and self._not_here() is loop:
            return None
        with self._start_lock:  # loops on two threads: one of them gets it
            if self._pid != os.getpid():  # forked: the parent's loop and descriptors are not ours
                self._reset()
            here = self._here
            if here is not None:
                if here.loop is loop:
                    return here
                if not here.loop.is_closed() and (
                    here.loop.is_running() or not here.on_this_thread
                ):
                    return None  # another thread's loop, still open: this one uses the thread
                # Its loop is closed, or it is a loop of this thread, stopped while this one
                # runs: only landing its flights here releases their logs (else an append
                # to one from here would wait on the commit thread for that loop to run).
                if not here.idle:
                    # On another thread, the watch thread lands them (`loopwatch.py`).
                    here.salvage()
                here.close()
            try:
                self._here = here = LoopCommits.open(self._logs, loop)
            except OSError:  # no descriptor for its eventfd (EMFILE): the thread, this time
                self._here = None
                return None
            if here is None:
                self._not_here = weakref.ref(loop)
            return here

    def land_held(self, session_id: str) -> None:
        """Before a blocking append on this thread: if it is the loop's, with a flight of
        that log in flight, land the loop's flights now, rather than wait for the watch
        thread to (`loopwatch.py`) while the loop cannot run."""
        here = self._here
        if here is not None and self._pid == os.getpid() and here.holds(session_id):
            here.land_now()

    def close(self) -> None:
        """Refuse new appends; the commit thread answers the queued ones, then stops."""
        self._stopped = True
        if self._pid != os.getpid():
            # Forked: the loop, threads and AIO context are the parent's. Its loop's epoll
            # set is shared with this process: even unwatching its eventfd from here would
            # leave the parent's appends unanswered for good.
            self._reset()
        here, self._here = self._here, None
        if here is not None:
            try:
                on_loop = asyncio.get_running_loop() is here.loop
            except RuntimeError:
                on_loop = False
            if on_loop:
                here.close()
            elif here.on_this_thread and not here.loop.is_running():
                # Closed, or stopped while this thread runs something else: its flights
                # land only if landed here, and closing the logs waits for them.
                here.salvage()
            else:
                with contextlib.suppress(RuntimeError):  # closed: nothing waits there
                    here.loop.call_soon_threadsafe(here.close)
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():  # forked: the parent's threads do not exist here
                self._reset()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agentstore-commit", daemon=True
                )
                self._thread.start()

    # --- the commit thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._dispatch()
        finally:
            self._syncs.stop()

    def _dispatch(self) -> None:
        """Take messages (appends, synced flights) until stopped with nothing in flight.

        A log has at most one flight; appends to it that arrive meanwhile wait for it to
        land, then go out together in its next flight.
        """
        get, get_nowait, empty = self._queue.get, self._queue.get_nowait, self._queue.empty
        in_flight: dict[str, Flight] = {}
        held_back: dict[str, list[Request]] = {}
        stopping = False
        while not stopping or in_flight:
            items = [get()]
            while len(items) < MAX_ROUND and not empty():
                items.append(get_nowait())
            answered: list[Request] = []
            ready: list[Request] = []
            for item in items:
                if item is None:
                    stopping = True
                elif isinstance(item, Flight):
                    session_id = item.group.view.session_id
                    in_flight.pop(session_id, None)
                    answered += self._land_or_fail(item)
                    ready += held_back.pop(session_id, ())
                elif item.session_id in in_flight:
                    held_back.setdefault(item.session_id, []).append(item)
                else:
                    ready.append(item)
            if self._deferred:
                ready, self._deferred = self._deferred + ready, []
            if stopping and not in_flight:
                for waiting in held_back.values():
                    ready += waiting
                held_back.clear()
            tries = 0
            while ready:
                tries += 1
                if tries > 3:  # a log closed under us again and again: give up on these
                    answered += self._fail(ready, "cannot open the log for appending")
                    break
                try:
                    answered += self._take_off(ready, in_flight)
                except BaseException as exc:  # a bug here must still answer every waiter
                    for request in ready:
                        if request.outcome is None:
                            request.outcome = (False, exc)
                            answered.append(request)
                    self._deferred.clear()
                # Deferred appends go now if nothing is in flight (no landing will come).
                ready = []
                if self._deferred and not in_flight:
                    ready, self._deferred = self._deferred, []
            self._wake(answered)
            del items, answered, ready

    def _take_off(self, ready: list[Request], in_flight: dict[str, Flight]) -> list[Request]:
        """Plan and write the ready appends, a group per log; sync them or start their syncs.

        Returns the appends answered now. Appends to a log this process must open first
        wait (in `_deferred`) until nothing is in flight: opening takes the directory's
        lock, which a deletion holds while it waits for the mutex of a log in flight.
        """
        if self._closed():
            return self._refuse(ready)
        by_log: dict[str, list[Request]] = {}
        for request in ready:
            by_log.setdefault(request.session_id, []).append(request)
        answered: list[Request] = []
        views: list[tuple[LogView, list[Request]]] = []
        for session_id, requests in by_log.items():
            view = self._logs.peek(session_id)
            if view is None and not in_flight:
                try:  # no mutex is held yet: opening is safe
                    view = self._logs.get(session_id)
                except Exception as exc:
                    for request in requests:
                        request.outcome = (False, exc)
                    answered += requests
                    continue
            if view is None or view.fd is None:
                self._deferred += requests
            else:
                views.append((view, requests))
        flights: list[Flight] = []
        for view, requests in views:
            flight = self._lift(view, requests)
            if flight is not None:
                flights.append(flight)
            elif all(request.outcome is not None for request in requests):
                answered += requests
            else:
                self._deferred += requests  # the log was closed meanwhile
        if not self._fsync or (len(flights) == 1 and not in_flight):
            # Nothing else in flight: sync here rather than hop to a sync thread and back.
            for flight in flights:
                if self._fsync:
                    flight.sync()
                answered += self._land_or_fail(flight)
            return answered
        for flight in flights:
            in_flight[flight.group.view.session_id] = flight
        self._syncs.start(flights)
        return answered

    def _lift(self, view: LogView, requests: list[Request]) -> Flight | None:
        """Take a log's mutex and lock, plan each append in order, write the group.

        Returns the flight (the mutex and lock stay held until it lands), or None: every
        append answered already (the log could not be locked), or none (it was closed).
        """
        view.mutex.acquire()
        if view.fd is None:  # closed (evicted) since it was looked up
            view.mutex.release()
            return None
        group = LogGroup(self._logs, view)
        try:
            group.lock()
        except Exception as exc:
            view.mutex.release()
            for request in requests:
                request.outcome = (False, exc)
            return None
        return Flight.lift(group, requests)

    @staticmethod
    def _land_or_fail(flight: Flight) -> list[Request]:
        """Finish a flight on the commit thread (`Flight.land`); return its requests."""
        flight.land()
        return flight.requests

    @staticmethod
    def _fail(requests: list[Request], why: str) -> list[Request]:
        for request in requests:
            request.outcome = (False, StorageError(f"session {request.session_id!r}: {why}"))
        return requests

    @staticmethod
    def _refuse(requests: list[Request]) -> list[Request]:
        for request in requests:
            error = StoreClosedError("the store was closed; nothing was appended")
            request.outcome = (False, error)
        return requests

    def _wake(self, requests: list[Request]) -> None:
        """Hand answered appends to their loops, through the inbox (see `inbox.py`)."""
        if not requests:
            return
        inbox = self._inbox
        loop = requests[0].loop
        if inbox is None or inbox.loop is not loop:
            inbox = self._inbox = LoopInbox(loop, resolve)
        if all(request.loop is loop for request in requests):
            inbox.post(requests)
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[Request]] = {}
        for request in requests:
            by_loop.setdefault(request.loop, []).append(request)
        for other, answered in by_loop.items():
            if other is loop:
                inbox.post(answered)
            else:  # a store used from two loops' threads: seldom, so no inbox of its own
                with contextlib.suppress(RuntimeError):  # closed: nobody waits any more
                    other.call_soon_threadsafe(resolve, answered)

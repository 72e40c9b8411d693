"""Where a commit round's logs are made durable: the kernel's AIO, else sync threads.

A `Flight` is one log's group from its write to its landing; the commit thread holds
the log's mutex and lock all along (see `commits.py`). `Syncs.start` makes the flights
of a round durable in parallel and hands each back through `done` once its
`fdatasync` has ended (an error is kept in `Flight.error`, for the commit thread to undo
under the mutex). The syncs go to the kernel in one `io_submit` where Linux AIO works
(`aiosync.py`): measured on this project's 2-core machines, the commit path then costs
the process about a third less CPU than with a thread per sync, and about four context
switches fewer per append. Elsewhere, and for whatever the kernel refuses, a pool of
threads each runs one `fdatasync` at a time.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

from agentstore.backends.base import PlannedAppend
from agentstore.backends.file import atomic
from agentstore.backends.file.aiosync import AioSyncer
from agentstore.backends.file.group import LogGroup
from agentstore.backends.file.inbox import Request

__all__ = ["SYNC_THREADS", "Flight", "Syncs"]

SYNC_THREADS = 16
"""The most logs synced at once on threads (the disk does parallel syncs several times
faster than one after another)."""

_STOP = None


class Flight:
    """A log's group between its write and its landing (its mutex and lock held)."""

    __slots__ = ("error", "group", "planned", "requests")

    def __init__(
        self,
        group: LogGroup,
        planned: list[tuple[Request, PlannedAppend]],
        requests: list[Request],
    ) -> None:
        self.group = group
        self.planned = planned
        self.requests = requests
        self.error: BaseException | None = None

    @classmethod
    def lift(cls, group: LogGroup, requests: list[Request]) -> Flight:
        """Plan each append on a locked group, in order, and write the lines planned.

        An append its own rules refuse is answered at once; the others go on. An error of
        the write is kept in `error`, for `land` to undo.
        """
        planned: list[tuple[Request, PlannedAppend]] = []
        for request in requests:
            try:
                plan = group.add(request.batch, request.expected_seq)
            except Exception as exc:  # its own rules failed: the others go on
                request.outcome = (False, exc)
                continue
            planned.append((request, plan))
        flight = cls(group, planned, requests)
        if group.pending:
            try:
                group.write()
            except Exception as exc:
                flight.error = exc
        return flight

    def land(self) -> None:
        """Commit and answer the appends (or undo and fail them), then release the log's
        lock and mutex (call where the mutex is held). Every append gets an outcome, even
        when a bug raises here."""
        group = self.group
        try:
            try:
                error = self.error
                if isinstance(error, OSError):  # from the sync: undone under the mutex
                    error = group.failed(error)
                if error is not None:
                    for request, _ in self.planned:
                        request.outcome = (False, error)
                    return
                group.commit()
                for request, plan in self.planned:
                    try:
                        request.outcome = (True, group.result(plan))
                    except Exception as exc:
                        request.outcome = (False, exc)
            finally:
                group.unlock()
                group.view.mutex.release()
        except BaseException as exc:  # a bug here must still answer every waiter
            for request in self.requests:
                if request.outcome is None:
                    request.outcome = (False, exc)

    @property
    def needs_sync(self) -> bool:
        """True when the flight wrote lines that are not durable yet."""
        return self.error is None and self.group.pending

    def sync(self) -> None:
        """`fdatasync` the log here; an error is kept for the commit thread to undo."""
        if self.needs_sync:
            try:
                atomic.sync(self.group.fd)
            except OSError as exc:
                self.error = exc


class Syncs:
    """The syncs of one commit thread (start and stop them from that thread)."""

    def __init__(self, done: Callable[[Flight], None], *, aio: bool) -> None:
        self._done = done
        self._use_aio = aio
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._aio: AioSyncer[Flight] | None = None
        self._aio_tried = not self._use_aio
        self._to_sync: queue.SimpleQueue[Flight | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._count_lock = threading.Lock()

    def start(self, flights: list[Flight]) -> None:
        """Start syncing each flight; each comes back through `done` (from another thread)."""
        if self._pid != os.getpid():  # forked: the parent's threads and AIO context are not ours
            self._reset()
        if not self._aio_tried:
            self._aio_tried = True
            self._aio = AioSyncer.open(self._synced)
        rest = flights
        if self._aio is not None:
            # Which land now (nothing to sync, or failed already) is decided before the
            # submit: a sync the kernel fails at once sets its flight's error on the reaper
            # thread, and that flight must not land a second time from here.
            now = [f for f in flights if not f.needs_sync]
            rest = self._aio.submit([(f.group.fd, f) for f in flights if f.needs_sync])
            for flight in now:
                self._done(flight)
        for flight in rest:
            self._start_thread_sync(flight)

    def stop(self) -> None:
        """Let the threads and the AIO reaper end once they have handed back their flights."""
        for _ in self._threads:
            self._to_sync.put(_STOP)
        self._threads = []
        if self._aio is not None:
            self._aio.close()
        self._aio, self._aio_tried = None, not self._use_aio

    def _synced(self, finished: list[tuple[Flight, OSError | None]]) -> None:
        # On the AIO reaper thread.
        for flight, error in finished:
            if error is not None:
                flight.error = error
            self._done(flight)

    def _start_thread_sync(self, flight: Flight) -> None:
        with self._count_lock:
            start = self._idle == 0 and len(self._threads) < SYNC_THREADS
            if not start:
                self._idle -= 1
        if start:
            thread = threading.Thread(
                target=self._sync_worker, name=f"agentstore-sync-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._to_sync.put(flight)

    def _sync_worker(self) -> None:
        get, done = self._to_sync.get, self._done
        while True:
            flight = get()
            if flight is _STOP:
                return
            flight.sync()  # an error is undone by the commit thread, which holds the mutex
            with self._count_lock:
                self._idle += 1
            done(flight)

"""Durable appends made on the event loop's own thread, woken by the kernel when synced.

On the commit thread (`commits.py`) an append crosses threads four times: the loop hands
it over, the commit thread writes it and submits its `fdatasync`, a reaper thread takes
the ended sync, the commit thread answers it and the loop resumes the task. Each
crossing waits for the interpreter lock, which the loop holds whenever it is busy: in the
gRPC server (16 clients on a file store, this project's 2-core machines) an append
waited there a median 1.9 ms, of which the kernel's `fdatasync` took about 0.22 ms.

Here an append to a log that is open, idle and not locked by another process is planned
and written on the loop's thread at once (the `write` lands in the page cache), and its
`fdatasync` goes to the kernel by AIO (`aiosync.py`): at once when nothing else is
syncing, else when a sync in flight ends (or `HOLD_S` later), with every flight that came
meanwhile in one `io_submit` (a round per sync, as a group commit makes). The sync's end
adds one to an eventfd the loop watches; the loop takes it, commits, and answers. No
other thread is involved, and the loop's thread takes and releases the log's mutex.

Anything else goes to the commit thread as before: a log this process must open, catch
up on or repair, one another process holds, an append from another thread's loop (a
loop of the same thread takes over, landing what the stopped one left), and a session
with several appends at once (many tasks on one session: the commit thread gathers them
into one write while the loop runs the tasks, where the loop would do both). Such a
session stays there while its appends overlap, and until every append sent there is
answered, so a session's appends are still answered in order (the commit thread waits
for the log's mutex, which the loop releases when its flight has landed).

A loop blocked by a synchronous call, stopped or gone lands nothing meanwhile: once a
flight is `loopwatch.LATE_S` old, a watch thread submits its sync if the loop has not,
and lands it once synced; its answer waits for the loop (`loopwatch.py`). So the flight's
mutex is not the writing thread's but the flight's (`mutex.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from typing import Any

from agentstore.backends.file import loopwatch
from agentstore.backends.file.aiosync import AioSyncer
from agentstore.backends.file.group import LogGroup
from agentstore.backends.file.inbox import Request, resolve
from agentstore.backends.file.log import Logs
from agentstore.backends.file.syncing import Flight

__all__ = ["LoopCommits"]

HOLD_S = 0.002
"""How long a flight held for a sync of another log to end waits at most: beside a session
syncing 8 MB payloads, a small one's appends took 50-67 ms without it, 7.5-8.4 with it."""

_STAY_CONTENDED = 64
"""Appends a session found contended leaves to the commit thread before trying here again."""
_MAX_CONTENDED = 1024
"""Sessions remembered as contended at most: the oldest is forgotten (it may try here
again sooner), else every session ever contended and then left idle stayed for good."""


class LoopCommits:
    """Appends committed on one event loop's thread (see the module docstring)."""

    def __init__(
        self,
        logs: Logs,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._logs = logs
        self.loop = loop
        self._thread = threading.get_ident()
        self._in_flight: dict[str, Flight] = {}
        self._to_submit: list[Flight] = []
        self._hold: asyncio.TimerHandle | None = None  # submits held flights (`HOLD_S`)
        self._written: dict[str, float] = {}
        """When each flight in flight was written (`time.monotonic()`)."""
        self._answers: list[Flight] = []
        """Flights the watch thread landed, to answer on the loop (before any later one)."""
        self._watch_lock = threading.Lock()
        """What the watch thread shares with the loop (`loopwatch.py`): the flights' list
        and their claim by a landing, what waits to be submitted, the syncer's reaping."""
        self._on_threads: dict[Flight, threading.Event] = {}
        """Flights synced on worker threads (the AIO context was full): set once synced."""
        self._contended: dict[str, int] = {}
        """Sessions appended to by several tasks at once: appends left to the commit thread."""
        self._elsewhere: dict[str, int] = {}
        """Per session, its appends sent to the commit thread and not answered yet."""
        self._closed = False
        self._eventfd = -1
        self._syncer: AioSyncer[Flight] | None = None
        self._events: Any = None
        self._watch_events: Any = None  # `io_getevents` buffers: the loop's, the watch's

    @classmethod
    def open(cls, logs: Logs, loop: asyncio.AbstractEventLoop) -> LoopCommits | None:
        """Start committing on `loop` (call on its thread); None where AIO cannot tell it.

        Raises `OSError` when no eventfd can be made now (out of descriptors)."""
        if not hasattr(os, "eventfd") or not hasattr(loop, "add_reader"):
            return None
        engine = cls(logs, loop)
        engine._eventfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        engine._syncer = AioSyncer.open(engine._synced, engine._eventfd)
        try:
            if engine._syncer is None:
                raise NotImplementedError
            loop.add_reader(engine._eventfd, engine._on_synced)
        except (NotImplementedError, RuntimeError, OSError):  # no AIO, or a loop without readers
            engine._free()
            return None
        engine._events = engine._syncer.events()
        engine._watch_events = engine._syncer.events()
        return engine

    @property
    def in_flight(self) -> bool:
        """True while a flight is in flight (read by the watch thread)."""
        return bool(self._in_flight)

    @property
    def on_this_thread(self) -> bool:
        """True on the thread this loop last committed on (holding its flights' mutexes)."""
        return threading.get_ident() == self._thread

    @property
    def idle(self) -> bool:
        """True when nothing is in flight here or sent to the commit thread from here."""
        return not self._in_flight and not self._elsewhere

    # --- on the loop's thread ----------------------------------------------------------------

    def take(self, request: Request) -> bool:
        """Commit `request` here (True), or leave it to the commit thread (False)."""
        sid = request.session_id
        if self._closed:
            return False
        if sid in self._elsewhere or sid in self._in_flight:
            # Another append to it is not answered yet: the session has several writers
            # at once, and stays with the commit thread while that goes on (else each lull
            # would put one flight here that the commit thread then waits for).
            contended = self._contended
            contended.pop(sid, None)  # to the end: the oldest goes first
            contended[sid] = _STAY_CONTENDED
            if len(contended) > _MAX_CONTENDED:
                del contended[next(iter(contended))]
            return False
        stay = self._contended.get(sid)
        if stay is not None:
            if stay > 1:
                self._contended[sid] = stay - 1
            else:
                del self._contended[sid]
            return False
        return self._lift(sid, [request])

    def sent_elsewhere(self, request: Request) -> None:
        """Note an append of this loop given to the commit thread (until `answered`)."""
        request.elsewhere = True
        self._elsewhere[request.session_id] = self._elsewhere.get(request.session_id, 0) + 1

    def answered(self, request: Request) -> None:
        """An append sent to the commit thread was answered: its session may come back."""
        sid = request.session_id
        left = self._elsewhere.get(sid, 0) - 1
        if left > 0:
            self._elsewhere[sid] = left
        else:
            self._elsewhere.pop(sid, None)
            if self._closed and self.idle:
                self._free()

    def close(self) -> None:
        """Take no more appends; free the eventfd and AIO context once nothing is in flight."""
        self._closed = True
        if self.idle:
            self._free()

    def _lift(self, sid: str, requests: list[Request]) -> bool:
        view = self._logs.peek(sid)
        if view is None or view.fd is None or not view.mutex.acquire_alone():
            return False
        self._thread = threading.get_ident()  # the loop's thread now (a loop may move)
        group = LogGroup(self._logs, view)
        if view.fd is None or not group.try_lock():
            view.mutex.release()
            return False
        flight = Flight.lift(group, requests)
        needs_sync = flight.needs_sync
        # Held by the flight now, not by this thread: it lands here, or on the watch
        # thread if this loop is late (`loopwatch.py`), and until then this thread does
        # not take the log again without waiting.
        view.mutex.detach()
        with self._watch_lock:
            self._in_flight[sid] = flight
            if needs_sync:
                self._written[sid] = time.monotonic()
                self._to_submit.append(flight)
            first = len(self._to_submit) == 1
        if not needs_sync:
            self._land(flight)
            return True
        loopwatch.poke(self)
        assert self._syncer is not None
        if first and not self._syncer.pending:
            self._submit()  # nothing else syncing: a lone append waits for nothing
        elif first and self._hold is None:
            self._hold = self.loop.call_later(HOLD_S, self._held_long)
        # Else it waits for a sync in flight to end (`_on_synced`) and goes with every
        # flight that came meanwhile in one `io_submit` (17-27 us each here), a round per
        # sync: the gRPC server's 16 clients, whose appends arrive over many turns, went
        # 10% faster than with a round per turn. Held no longer than `HOLD_S`
        # (`_held_long`), nor, on a late loop, than `loopwatch.LATE_S` (the watch thread).
        return True

    def _held_long(self) -> None:
        self._hold = None
        self._submit()  # what is still held (nothing, if a sync ended first)

    def _submit(self) -> None:
        if self._hold is not None:  # these flights go now: the next held ones get their own
            self._hold.cancel()
            self._hold = None
        with self._watch_lock:
            flights, self._to_submit = self._to_submit, []
            syncer = self._syncer
            if not flights or syncer is None:  # landed by `salvage` meanwhile
                return
            refused = syncer.submit([(flight.group.fd, flight) for flight in flights])
        for flight in refused:
            # Refused: the kernel's AIO context is full (syncs in flight: this one is
            # synced on a worker thread), or it cannot sync this way at all (nothing in
            # flight: the same, and later appends go to the commit thread).
            if not syncer.pending:
                self._closed = True
            synced = self._on_threads[flight] = threading.Event()
            try:
                done = self.loop.run_in_executor(None, _sync_and_set, flight, synced)
            except RuntimeError:  # the loop's executor was shut down: sync here, this once
                del self._on_threads[flight]
                flight.sync()
                self._land(flight)
                continue
            done.add_done_callback(functools.partial(self._land_after, flight))

    def _land_after(self, flight: Flight, _: object) -> None:
        self._land(flight)

    def _on_synced(self) -> None:
        with contextlib.suppress(BlockingIOError):  # already reset by an earlier call
            os.eventfd_read(self._eventfd)
        self._synced(self._take_ended(wait=False))
        if self._to_submit:  # held while a sync was in flight (see `_lift`)
            self._submit()

    def _take_ended(self, *, wait: bool) -> list[tuple[Flight, OSError | None]]:
        """The syncs that have ended (`wait`: every one in flight)."""
        with self._watch_lock:
            if self._syncer is None:
                return []
            return self._syncer.take_ended(self._events, wait=wait)

    def release_late(self, written_before: float) -> None:
        """On the watch thread: the loop is late to land the flights written before then.
        Their syncs are submitted if the loop has not, and every flight whose sync has
        ended is landed here, its answer left to the loop (see `loopwatch.py`)."""
        with self._watch_lock:
            syncer = self._syncer
            late = [sid for sid, at in list(self._written.items()) if at < written_before]
            if syncer is None or not late:
                return
            ready: list[tuple[Flight, OSError | None]] = []
            if self._to_submit:  # the loop has not run since they were written
                flights, self._to_submit = self._to_submit, []
                for flight in syncer.submit([(f.group.fd, f) for f in flights]):
                    flight.sync()  # refused: synced here
                    ready.append((flight, None))
            ready += syncer.take_ended(self._watch_events, wait=False)
            for flight, synced in list(self._on_threads.items()):
                if synced.is_set():  # synced on a worker thread: its outcome in the flight
                    ready.append((flight, None))
            for flight, error in ready:
                if error is not None:
                    flight.error = error
                if self._claim(flight):
                    flight.group.view.mutex.attach()
                    flight.land()
                    self._answers.append(flight)
            answer = bool(self._answers)
        if answer:
            with contextlib.suppress(RuntimeError):  # closed: nobody waits for them
                self.loop.call_soon_threadsafe(self._answer_landed)

    def _claim(self, flight: Flight) -> bool:
        """Take a flight out of those in flight, to land it (hold `_watch_lock`); False if
        it was taken already (landed, or being landed, elsewhere)."""
        sid = flight.group.view.session_id
        if self._in_flight.get(sid) is not flight:
            return False
        del self._in_flight[sid]
        self._written.pop(sid, None)
        self._on_threads.pop(flight, None)
        return True

    def _answer_landed(self) -> None:
        with self._watch_lock:
            answers, self._answers = self._answers, []
        if not self.loop.is_closed():
            for flight in answers:
                resolve(flight.requests)
        if self._closed and self.idle:
            self._free()

    def _synced(self, finished: list[tuple[Flight, OSError | None]]) -> None:
        for flight, error in finished:
            if error is not None:
                flight.error = error
            self._land(flight)

    def _land(self, flight: Flight) -> None:
        """Commit and answer a synced flight, and release its log (once: a flight that
        `salvage` landed may still come back from a worker thread's sync)."""
        with self._watch_lock:  # claimed: the watch thread no longer touches it
            if not self._claim(flight):
                return
            answers, self._answers = self._answers, []  # landed before it: answered first
        flight.group.view.mutex.attach()
        flight.land()
        if not self.loop.is_closed():  # else nobody waits (see `salvage`)
            for landed in answers:
                resolve(landed.requests)
            resolve(flight.requests)
        if self._closed and self.idle:
            self._free()

    def __del__(self) -> None:
        # Unreachable: its loop, which watched the eventfd, is gone (closed and collected).
        if self._eventfd >= 0:
            if self._syncer is not None:
                self._syncer.close()
            os.close(self._eventfd)

    def salvage(self) -> bool:
        """Land what is in flight although the loop will not (closed while an append was
        waiting, or stopped while another loop runs on its thread), and stop; True if
        done. Only on the loop's own thread, where answers may be given (False elsewhere:
        the watch thread lands them). A stopped loop's waiting tasks get their answers
        when it runs again."""
        if not self.land_now():
            return False
        self._closed = True
        self._free()
        return True

    def holds(self, session_id: str) -> bool:
        """True when called on the loop's thread while a flight of that log is in flight
        (a blocking call here that takes its mutex would wait for the watch thread)."""
        return session_id in self._in_flight and self.on_this_thread

    def land_now(self) -> bool:
        """Land everything in flight, waiting for the syncs; True if done. Only on the
        loop's thread (False elsewhere), for a call that cannot wait for the loop: the
        loop closed or stopped, or a blocking append made on the loop's own thread."""
        if not self.on_this_thread:
            return False
        # Each with the outcome of its own sync: after a failed sync a second one can
        # succeed with the pages lost (PostgreSQL's "fsyncgate"), so none is synced twice.
        with self._watch_lock:
            self._to_submit = []
        self._synced(self._take_ended(wait=True))  # those the kernel syncs, as they end
        for flight in list(self._in_flight.values()):
            synced = self._on_threads.pop(flight, None)
            if synced is not None:
                synced.wait()  # a worker thread syncs it
            else:
                flight.sync()  # not submitted yet: this is its only sync
            self._land(flight)
        return True

    def _free(self) -> None:
        if self._eventfd < 0:
            return
        if not self.loop.is_closed():
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self._eventfd)
        with self._watch_lock:
            if self._syncer is not None:
                self._syncer.close()
                self._syncer = None
        os.close(self._eventfd)
        self._eventfd = -1


def _sync_and_set(flight: Flight, synced: threading.Event) -> None:
    # On a worker thread: the outcome is in the flight before `synced` is set.
    try:
        flight.sync()
    finally:
        synced.set()

"""`fdatasync` of many logs at once without a thread each, through Linux AIO.

The commit thread hands every log it wrote in a round to the kernel with one
`io_submit` of `IOCB_CMD_FDSYNC` requests (Linux 4.18 and later run them in parallel on
the kernel's own workers, each the `fdatasync` of one file); one reaper thread waits in
`io_getevents` and hands the finished syncs back in batches. A Python thread per sync
costs, per log, a thread wake-up and two waits for the interpreter lock, which on a
loaded machine were most of the commit path's system time (see `commits.py`).

Opened with an eventfd (`notify`), the syncer starts no reaper: each sync that ends adds
one to that descriptor (`IOCB_FLAG_RESFD`), and its owner, which watches it (an event
loop, see `loopcommits.py`), takes the ended syncs with `take_ended`.

Where AIO is missing or refused (another system or architecture, a seccomp filter, an
old kernel) `AioSyncer.open` returns None, and a request the kernel refuses is handed
back by `submit`: the commit thread syncs those on its threads, as before.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["AioSyncer"]

T = TypeVar("T")

# (io_setup, io_destroy, io_submit, io_getevents) per architecture.
_SYSCALLS = {"x86_64": (206, 207, 209, 208), "aarch64": (0, 1, 2, 4)}
_IOCB_CMD_FDSYNC = 3
_IOCB_FLAG_RESFD = 1
_MAX_EVENTS = 128
"""Syncs in flight at once (the context's size): more are handed back, to sync on threads.
Each context takes about twice this from the system's `fs.aio-max-nr` (65,536 by default)."""
_BATCH = 64
_SPARE_MAX = 4
"""Idle contexts of closed eventfd-mode syncers kept for the next (see `close`)."""
_spare: list[tuple[int, int, int, int]] = []
"""(process id, size, context, next key) of each idle context kept."""
_spare_lock = threading.Lock()
_IDLE_WAKE_S = 1
"""How often an idle reaper looks whether it was closed (it cannot be woken otherwise)."""


class _Iocb(ctypes.Structure):
    # struct iocb of <linux/aio_abi.h>, little-endian (both architectures above).
    _fields_ = [
        ("aio_data", ctypes.c_uint64),
        ("aio_key", ctypes.c_uint32),
        ("aio_rw_flags", ctypes.c_int32),
        ("aio_lio_opcode", ctypes.c_uint16),
        ("aio_reqprio", ctypes.c_int16),
        ("aio_fildes", ctypes.c_uint32),
        ("aio_buf", ctypes.c_uint64),
        ("aio_nbytes", ctypes.c_uint64),
        ("aio_offset", ctypes.c_int64),
        ("aio_reserved2", ctypes.c_uint64),
        ("aio_flags", ctypes.c_uint32),
        ("aio_resfd", ctypes.c_uint32),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_uint64),
        ("obj", ctypes.c_uint64),
        ("res", ctypes.c_int64),
        ("res2", ctypes.c_int64),
    ]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class AioSyncer(Generic[T]):
    """Kernel-side `fdatasync`s; `done` gets (token, error or None) batches on the reaper
    thread, or, with `notify`, taken with `take_ended`."""

    def __init__(
        self,
        libc: ctypes.CDLL,
        calls: tuple[int, int, int, int],
        context: int,
        done: Callable[[list[tuple[T, OSError | None]]], None],
        notify: int | None = None,
        *,
        size: int = _MAX_EVENTS,
        next_key: int = 0,
    ) -> None:
        self._syscall = libc.syscall
        self._destroy, self._submit, self._getevents = calls[1:]
        self._context = ctypes.c_ulong(context)
        self._done = done
        self._notify = notify
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[T, _Iocb]] = {}
        """Key -> (token, its request: kept alive until the kernel is done with it)."""
        self._next_key = next_key
        self._closed = False
        self._broken = False
        self._pid = os.getpid()
        self._size = size
        self._events = (_Event * _BATCH)()
        if notify is None:
            self._thread = threading.Thread(target=self._reap, name="agentstore-aio", daemon=True)
            self._thread.start()

    @classmethod
    def open(
        cls, done: Callable[[list[tuple[T, OSError | None]]], None], notify: int | None = None
    ) -> AioSyncer[T] | None:
        """An `AioSyncer`, or None where this system offers no AIO context.

        With `notify` (an eventfd), ended syncs signal it and wait for `take_ended`.
        """
        # A 64-bit process only: a 32-bit one on a 64-bit kernel reports the same machine
        # but calls through another system call table.
        linux64 = sys.platform == "linux" and sys.maxsize > 2**32
        calls = _SYSCALLS.get(platform.machine()) if linux64 else None
        if calls is None:
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
        if notify is not None:
            spare = _take_spare()
            if spare is not None:  # its keys go on: no stale end of a sync can match one
                return cls(libc, calls, spare[0], done, notify, next_key=spare[1])
        context = ctypes.c_ulong(0)
        if libc.syscall(calls[0], ctypes.c_long(_MAX_EVENTS), ctypes.byref(context)) != 0:
            return None  # refused (a seccomp filter, a container's aio limit) or missing
        return cls(libc, calls, context.value, done, notify)

    @property
    def pending(self) -> bool:
        """True while a sync submitted has not been handed back."""
        return bool(self._pending)

    def submit(self, items: Sequence[tuple[int, T]]) -> list[T]:
        """Start the `fdatasync` of each (descriptor, token).

        Returns the tokens the kernel did not take (an old kernel without `FDSYNC`, a
        file whose system cannot sync this way, a closed syncer): sync those otherwise.
        """
        if self._closed or not items:
            return [token for _, token in items]
        pointers = (ctypes.POINTER(_Iocb) * len(items))()
        keys: list[int] = []
        with self._lock:
            for index, (fd, token) in enumerate(items):
                request = _Iocb()
                request.aio_lio_opcode = _IOCB_CMD_FDSYNC
                request.aio_fildes = fd
                if self._notify is not None:
                    request.aio_flags = _IOCB_FLAG_RESFD
                    request.aio_resfd = self._notify
                key = request.aio_data = self._next_key
                self._next_key += 1
                self._pending[key] = (token, request)
                keys.append(key)
                pointers[index] = ctypes.pointer(request)
        taken = 0
        while taken < len(items):
            rest = len(items) - taken
            got = self._syscall(
                self._submit,
                self._context,
                ctypes.c_long(rest),
                ctypes.byref(pointers, taken * ctypes.sizeof(ctypes.c_void_p)),
            )
            if got < 0 and ctypes.get_errno() == errno.EINTR:
                continue
            if got <= 0:
                # Refused (EAGAIN: the context is full; EINVAL: no FDSYNC for this file
                # or kernel): hand it and the rest back rather than wait here.
                break
            taken += got
        if taken == len(items):
            return []
        with self._lock:
            for key in keys[taken:]:
                del self._pending[key]
        return [token for _, token in items[taken:]]

    def close(self) -> None:
        """Take no more syncs; the reaper hands back those in flight, then stops.

        With `notify` there is no reaper: an idle context is kept for the next syncer to
        open, else it is freed on a thread of its own (the kernel first ends the syncs in
        flight, which are not handed back: close once `pending` is False). `io_destroy`
        waits for an RCU grace period, 32 ms here: on the caller's thread, an event loop,
        every store's close and every change of loop stalled it that long.
        """
        self._closed = True
        if self._notify is None:
            return
        with self._lock:
            context, self._context = self._context, ctypes.c_ulong(0)
            idle = not self._pending and not self._broken
        if not context.value or self._pid != os.getpid():  # a forked child's is not its own
            return
        if idle:
            with _spare_lock:
                if len(_spare) < _SPARE_MAX:
                    _spare.append((self._pid, self._size, context.value, self._next_key))
                    return
        try:
            threading.Thread(
                target=self._syscall,
                args=(self._destroy, context),
                name="agentstore-aio-free",
                daemon=True,
            ).start()
        except RuntimeError:  # no new threads (the interpreter is exiting)
            self._syscall(self._destroy, context)

    def events(self) -> ctypes.Array[_Event]:
        """A buffer for `take_ended` (one per thread that reaps)."""
        return (_Event * _BATCH)()

    def take_ended(
        self, events: ctypes.Array[_Event], *, wait: bool
    ) -> list[tuple[T, OSError | None]]:
        """The syncs that have ended, as (token, error or None), taken off `pending` and
        not handed to `done` (`notify` only; the caller serialises calls, each thread with
        its own `events`). `wait`: until none is pending. A broken context fails them all."""
        out: list[tuple[T, OSError | None]] = []
        timeout = _Timespec(_IDLE_WAKE_S, 0) if wait else _Timespec(0, 0)
        while self._pending and self._context.value:
            got = self._get_events(1 if wait else 0, timeout, events)
            if isinstance(got, OSError):
                out += self._take_pending(got)
                break
            out += self._taken(events, got)
            if not wait and got < _BATCH:
                break
        return out

    def _get_events(
        self, at_least: int, timeout: _Timespec, events: ctypes.Array[_Event]
    ) -> int | OSError:
        """`io_getevents` into `events`: how many ended (retried on EINTR), or the error."""
        while True:
            got: int = self._syscall(
                self._getevents,
                self._context,
                ctypes.c_long(at_least),
                ctypes.c_long(_BATCH),
                events,
                ctypes.byref(timeout),
            )
            if got >= 0:
                return got
            err = ctypes.get_errno()
            if err != errno.EINTR:
                return OSError(err, f"io_getevents: {os.strerror(err)}")

    def _taken(self, events: ctypes.Array[_Event], got: int) -> list[tuple[T, OSError | None]]:
        finished: list[tuple[T, OSError | None]] = []
        with self._lock:
            for event in events[:got]:
                entry = self._pending.pop(event.data, None)
                if entry is None:  # not one of ours: nothing waits for it
                    continue
                token, res = entry[0], event.res
                error = OSError(-res, os.strerror(-res)) if res < 0 else None
                finished.append((token, error))
        return finished

    def _reap(self) -> None:
        events = self._events
        idle = _Timespec(_IDLE_WAKE_S, 0)
        try:
            while True:
                got = self._get_events(1, idle, events)
                if isinstance(got, OSError):
                    self._done(self._take_pending(got))
                    return
                if got == 0:
                    with self._lock:
                        if self._closed and not self._pending:
                            return
                    continue
                finished = self._taken(events, got)
                if finished:
                    self._done(finished)
        finally:
            self._syscall(self._destroy, self._context)

    def _take_pending(self, error: OSError) -> list[tuple[T, OSError | None]]:
        # The context broke: nothing in flight can be known durable, so each is failed
        # (and cut back out by whoever holds its log).
        self._closed = True
        self._broken = True
        with self._lock:
            tokens = [token for token, _ in self._pending.values()]
            self._pending.clear()
        return [(token, error) for token in tokens]


def _take_spare() -> tuple[int, int] | None:
    """(context, next key) of an idle context this process kept, of today's size."""
    pid = os.getpid()
    with _spare_lock:
        # A forked child inherits the list, not the contexts (the kernel does not copy them).
        _spare[:] = [entry for entry in _spare if entry[0] == pid]
        for index, (_, size, context, key) in enumerate(_spare):
            if size == _MAX_EVENTS:
                del _spare[index]
                return context, key
    return None

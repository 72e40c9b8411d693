"""One log's share of a commit: appends planned in order, written once, synced once.

Every append to a log goes through a `LogGroup`, alone (`append_blocking`) or with the
other appends that waited for the same round of the commit thread (see `commits.py`).
Under the log's `flock` the group catches up with other processes, then plans each append
against the tail the appends before it left (ids, then `expected_seq`, sequence numbers,
timestamps: exactly as if they ran one after another), so one append can fail its
`expected_seq` while the others of its group succeed. The group's lines go out in one
`write` and one `fdatasync`; only then does this process's view of the log move on and do
the appends get their results. A crash before the sync can leave whole lines of the group
(never acknowledged, like an append whose reply was lost) or a batch cut short, which the
next writer removes as a torn tail (every line of a batch but its last carries
`batch_end`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

from agentstore.backends.base import (
    AppendResult,
    PendingEvent,
    PlannedAppend,
    plan_append,
)
from agentstore.backends.file import atomic
from agentstore.backends.file.idindex import BLOCK_BITS, HINT_PERIOD
from agentstore.backends.file.log import (
    Logs,
    LogView,
    lock_for_writing,
    unlock_if_open,
)
from agentstore.backends.file.retries import find_written, read_stored
from agentstore.backends.file.scan import (
    CHECKPOINT_EVERY,
    build_index,
)
from agentstore.backends.file.tail import committed_end
from agentstore.codec import encode_line
from agentstore.errors import CorruptLogError, StorageError
from agentstore.events import Event

__all__ = ["LogGroup", "append_alone", "encode_batch"]

logger = logging.getLogger("agentstore")


def encode_batch(session_id: str, new: list[tuple[PendingEvent, int, datetime]]) -> list[bytes]:
    """Encode a plan's new events as lines; all but the last carry `batch_end`."""
    last = new[-1][1] if new else 0
    return [
        encode_line(
            pending.id,
            session_id,
            seq,
            pending.type,
            pending.payload_json,
            ts,
            pending.metadata_json,
            None if seq == last else last,
        )
        for pending, seq, ts in new
    ]


class LogGroup:
    """The appends of one round to one log (hold `view.mutex` from `lock` to `result`)."""

    __slots__ = (
        "_answers_stored",
        "_lines",
        "_locked",
        "_new",
        "last_seq",
        "last_ts",
        "logs",
        "previous",
        "view",
    )

    def __init__(self, logs: Logs, view: LogView) -> None:
        self.logs = logs
        self.view = view
        self._locked = -1
        """The descriptor whose `flock` this group holds (-1: none)."""
        self._lines: list[bytes] = []
        self._new: dict[int, Event] = {}
        self.previous = 0
        """The log's last sequence number before this group."""
        self.last_seq = 0
        self.last_ts: datetime | None = None
        self._answers_stored = False
        """An append is answered with lines the log held before the group (see `add`)."""

    # --- under the log's lock ---------------------------------------------------------

    def lock(self) -> None:
        """Take the log's `flock`, repair a torn tail and catch up with other processes."""
        view = self.view
        fd = self._locked = lock_for_writing(view)
        try:
            # One `stat` of the name both checks that it still leads to this view's file
            # (as `Logs.check_not_replaced` does) and gives that file's size: one system
            # call fewer than that check and an `fstat`, on every flight.
            try:
                st = os.stat(view.path, follow_symlinks=False)
            except FileNotFoundError:
                self.logs.raise_gone(view)
            if st.st_ino != view.ino:
                self.logs.raise_gone(view)
            if st.st_size != view.size:
                _repair_or_catch_up(self.logs, view)
            if view.ids is None:
                view.ids = build_index(fd, view.path, view.session_id, view.size, view.checkpoints)
        except BaseException:
            self.unlock()
            raise
        self.previous = self.last_seq = view.last_seq
        self.last_ts = view.last_ts

    def try_lock(self) -> bool:
        """Take the log's `flock` if that needs no waiting and no reading; else take nothing.

        False when another process holds the lock, when the log is no longer this view's
        file, when it changed since this process last saw it (a torn tail to repair, or
        another process's lines to read), or when its ids were never read: `lock` does
        those, on a thread that may wait.
        """
        view = self.view
        fd = view.fd
        if fd is None or view.ids is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held elsewhere (EWOULDBLOCK), or no flock here: `lock` decides
            return False
        self._locked = fd
        try:
            st = os.stat(view.path, follow_symlinks=False)
        except OSError:
            st = None
        if st is None or st.st_ino != view.ino or st.st_size != view.size:
            self.unlock()
            return False
        self.previous = self.last_seq = view.last_seq
        self.last_ts = view.last_ts
        return True

    def unlock(self) -> None:
        """Release the log's `flock` (harmless when not held, or when the view was dropped)."""
        fd, self._locked = self._locked, -1
        if fd >= 0:
            unlock_if_open(self.view, fd)

    def add(self, batch: Sequence[PendingEvent], expected_seq: int | None) -> PlannedAppend:
        """Plan one append after those already in the group; raise if its rules fail.

        A failed append (its `expected_seq`, say) adds nothing; the group goes on.
        """
        view = self.view
        index = view.ids
        assert index is not None
        ids = [pending.id for pending in batch]
        last_seq = self.last_seq
        if expected_seq is not None and expected_seq != last_seq:
            # It fails unless every event is a repeat: look its ids up, add none.
            hits: list[int] | None = index.hits(ids)
            admitted = False
        else:
            # Each id with no entry is new: added at once, numbered as the plan will number
            # it (seen by the group's later appends; if the write fails the whole view,
            # index included, is dropped). The others are looked up in the log.
            hits = index.admit(ids, last_seq)
            admitted = True
        try:
            known = self._stored(ids, hits) if hits else {}
            plan = plan_append(
                view.session_id,
                batch,
                last_seq=last_seq,
                last_ts=self.last_ts,
                known_ids=known,
                now=datetime.now(UTC),
                expected_seq=expected_seq,
            )
        except BaseException:
            if admitted:
                index.undo(ids, last_seq, hits)
            raise
        if hits and len(plan.new) != (len(ids) - len(hits) if admitted else 0):
            # An id with an entry that was not stored (two ids of one hash): new after all,
            # and the numbers `admit` gave the ids after it are off. Renumber (seldom).
            if admitted:
                index.undo(ids, last_seq, hits)
            for pending, seq, _ in plan.new:
                index.add(pending.id, seq)
        if not self._answers_stored and plan.duplicates:
            # A retry answered with lines already in the log: they may be a writer's that
            # was killed between its write and its sync (never acknowledged, whole in the
            # page cache, not durable), so the answer waits for a sync like a write's.
            previous = self.previous
            self._answers_stored = any(seq <= previous for seq in plan.duplicates.values())
        if plan.new:
            self._lines += encode_batch(view.session_id, plan.new)
            for event in plan.events:
                if event is not None:
                    self._new[event.sequence_number] = event
            self.last_seq, self.last_ts = plan.last_seq, plan.last_ts
        return plan

    def _stored(self, ids: list[str], hits: list[int]) -> dict[str, int]:
        """Which of the ids at `hits` the log (or the group) has: id -> sequence number.

        An index hit names the block its id may be in: read there (at most `BLOCK` lines
        from a checkpoint) and compared. The hits are grouped by the block they name, so a
        retried batch reads each of its blocks once, not once an id (a retry of 5,000
        stored events read 2,048 lines for each: 15 s). An id only this batch has (a
        repeat within it) is found in neither: `plan_append` skips its repeat.
        """
        index = self.view.ids
        assert index is not None
        wanted: dict[int, set[str]] = {}  # hint -> the ids with an entry naming it
        for at in hits:
            event_id = ids[at]
            for hint in index.hints(event_id):
                wanted.setdefault(hint, set()).add(event_id)
        found: dict[str, int] = {}
        for hint, want in sorted(wanted.items()):  # the earliest blocks first
            want.difference_update(found)
            if want:
                self._find(want, hint, found)
        return found

    def _find(self, want: set[str], hint: int, found: dict[str, int]) -> None:
        """Put in `found` the ids of `want` in the blocks `hint` names (emptying `want`)."""
        block = hint
        while want and block << BLOCK_BITS <= self.last_seq:
            # The block and the next (see `IdIndex.admit`).
            first = max(block << BLOCK_BITS, 1)
            last = min(((block + 2) << BLOCK_BITS) - 1, self.last_seq)
            if first <= self.previous:
                find_written(self.fd, self.view, want, first, min(last, self.previous), found)
            # The group's own appends are not written yet: their events are in `_new`.
            for seq in range(max(first, self.previous + 1), last + 1):
                if not want:
                    break
                event_id = self._new[seq].id
                if event_id in want:
                    want.discard(event_id)
                    found[event_id] = seq
            block += HINT_PERIOD

    @property
    def pending(self) -> bool:
        """True when the group has lines to write, or answers an append with lines the
        log held before it: either is synced before it is acknowledged."""
        return bool(self._lines) or self._answers_stored

    def write(self) -> None:
        """Write every line of the group with one `write` (raises `StorageError`)."""
        lines = self._lines
        if not lines:  # only stored lines to answer with: nothing to write, a sync to make
            return
        try:
            atomic.write_all(self.fd, b"".join(lines) if len(lines) > 1 else lines[0])
        except OSError as exc:
            raise self.failed(exc) from exc

    def sync(self) -> None:
        """Make the group's lines durable (`fdatasync`; raises `StorageError`)."""
        try:
            atomic.sync(self.fd)
        except OSError as exc:
            raise self.failed(exc) from exc

    @property
    def fd(self) -> int:
        """The log's descriptor (open while the group holds the view's mutex)."""
        fd = self.view.fd
        assert fd is not None
        return fd

    def commit(self) -> None:
        """Move this process's view of the log past the group's lines (after the sync)."""
        view = self.view
        previous = self.previous
        if previous // CHECKPOINT_EVERY != self.last_seq // CHECKPOINT_EVERY:
            offset = view.size
            for seq, line in enumerate(self._lines, previous + 1):
                if seq % CHECKPOINT_EVERY == 0:
                    view.checkpoints[seq] = offset
                offset += len(line)
        # last_seq before size: `last_seq()` trusts last_seq once size matches.
        view.last_seq = self.last_seq
        view.last_ts = self.last_ts
        view.size += sum(map(len, self._lines))

    def result(self, plan: PlannedAppend) -> AppendResult:
        """The result of one append of the group, once committed (duplicates filled in)."""
        stored = read_stored(
            self.fd, self.view, (seq for seq in plan.duplicates.values() if seq not in self._new)
        )
        events: list[Event] = []
        for index, event in enumerate(plan.events):
            if event is None:
                seq = plan.duplicates[index]
                event = self._new.get(seq) or stored.get(seq) or self._missing(seq)
            events.append(event)
        return AppendResult(
            events, len(plan.new), plan.last_seq - len(plan.new), self.view.created_at
        )

    # --- failures ------------------------------------------------------------------------

    def failed(self, exc: OSError) -> StorageError:
        """Undo the group after its write or sync failed; return the error to raise.

        Call on the thread that holds the view's mutex (a sync thread hands its error back).
        """
        self._undo_failed_write()
        reason = "the disk is full" if exc.errno == errno.ENOSPC else str(exc)
        error = StorageError(f"could not write to {self.view.path}: {reason}; nothing was appended")
        error.__cause__ = exc
        return error

    def _undo_failed_write(self) -> None:
        """Cut the group back out of the log and drop the file descriptor.

        After a failed fsync the kernel may have dropped the dirty pages, so the
        descriptor is never trusted again (PostgreSQL's "fsyncgate").
        """
        view = self.view
        assert view.fd is not None
        try:
            atomic.truncate(view.fd, view.size)
            os.fsync(view.fd)
        except OSError:
            # The bytes stay beyond the committed end; whoever opens the log next treats a
            # partial line or batch as torn (a whole single line would be kept: it was not
            # acknowledged, but it was written, like an append whose reply was lost).
            logger.exception("%s: could not cut back a failed append", view.path)
        # Closing the descriptor (in `forget`) releases the flock too.
        self.logs.forget(view.session_id, only=view)

    def _missing(self, seq: int) -> NoReturn:
        raise CorruptLogError(f"event {seq} is missing", path=str(self.view.path), line=seq)


def append_alone(
    logs: Logs,
    view: LogView,
    batch: Sequence[PendingEvent],
    expected_seq: int | None,
    *,
    fsync: bool,
) -> AppendResult:
    """Append one batch to a log as a group of its own (call with `view.mutex` held)."""
    group = LogGroup(logs, view)
    group.lock()
    try:
        plan = group.add(batch, expected_seq)
        if group.pending:
            group.write()
            if fsync:
                group.sync()
        group.commit()
    finally:
        group.unlock()
    return group.result(plan)


def _repair_or_catch_up(logs: Logs, view: LogView) -> None:
    """Quarantine a torn tail, then read what other processes appended (hold the lock)."""
    assert view.fd is not None
    size = os.fstat(view.fd).st_size
    end = committed_end(view.fd, size)
    if end < view.size:
        # Only lines this process never accepted can be cut; anything else means the
        # file was changed by something other than an agentstore writer.
        logs.forget(view.session_id, only=view)
        raise StorageError(
            f"{view.path}: lines this process already read were cut by another program"
        )
    if end != size:
        try:
            logs.quarantine(view, end, size)
        except OSError as exc:
            raise StorageError(
                f"{view.path} ends with a torn line that could not be moved aside ({exc}); "
                "nothing was appended"
            ) from exc
    logs.catch_up_locked(view)

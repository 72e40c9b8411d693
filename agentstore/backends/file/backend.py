"""`FileBackend`: the Backend contract over a data directory (see the package docstring)."""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import anyio

from agentstore.backends._wakeups import AppendRegistry
from agentstore.backends.base import (
    AppendResult,
    Backend,
    EventFilter,
    PendingEvent,
    SessionChanges,
    SessionPage,
    SessionQuery,
    SnapshotRecord,
)
from agentstore.backends.file import atomic
from agentstore.backends.file.changes import delete_session_files, update_session_file
from agentstore.backends.file.commits import CommitQueue
from agentstore.backends.file.group import append_alone
from agentstore.backends.file.head import head_sync, session_with_head, unchanged_head
from agentstore.backends.file.layout import Layout
from agentstore.backends.file.listing import find_ids, list_page
from agentstore.backends.file.log import Logs
from agentstore.backends.file.opening import prepare_directory
from agentstore.backends.file.reading import batch_marks, read_events
from agentstore.backends.file.sessions import SessionIndex
from agentstore.backends.file.snapshots import default_fingerprint, encode_snapshot, read_snapshot
from agentstore.backends.file.writes import SessionBuilder, create_session_files
from agentstore.errors import (
    InvalidInputError,
    SessionNotFoundError,
    StorageError,
    StoreClosedError,
    StoreLockedError,
)
from agentstore.events import Event
from agentstore.session import Session

if TYPE_CHECKING:
    from agentstore.verify import VerifyReport

__all__ = ["Durability", "FileBackend"]

logger = logging.getLogger("agentstore")

Durability = Literal["fsync", "flush"]
"""`"fsync"`: an append returns once its lines are on disk. `"flush"`: once the OS has them."""


class FileBackend(Backend):
    """Stores sessions as files in a data directory (see `agentstore.backends.file`)."""

    shared_across_processes: ClassVar[bool] = True
    # A session's appends are answered in order: one flight per log at a time, on its
    # loop (`loopcommits.py`) or on the commit thread, which waits for the loop's flight.
    appends_complete_in_order = True
    appends_on_caller_thread = True  # `append_blocking`: a SyncStore appends on its thread

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "fsync",
        read_only: bool = False,
    ) -> None:
        if durability not in ("fsync", "flush"):
            raise InvalidInputError(f"durability must be 'fsync' or 'flush', not {durability!r}")
        self.root = Path(path)
        self.layout = Layout(self.root)
        self.durability: Durability = durability
        self.read_only = read_only
        self._logs = Logs(self.layout, read_only=read_only)
        # Creation times and labels of every session, so listing reads one file.
        self._index = SessionIndex(self.layout, writable=not read_only)
        self._closed = False
        # Appends wait for a round of the commit thread (group commit: see commits.py). It
        # holds this backend weakly: a cycle would keep a dropped store's caches alive
        # until a full run of the cyclic collector (which pauses every thread).
        me = weakref.ref(self)
        self._commits = CommitQueue(
            self._logs,
            fsync=durability == "fsync",
            closed=lambda: _gone_or_closed(me),
            fallback=lambda *args: _alive(me)._append_sync(*args),
        )
        self._key = os.path.realpath(self.root)
        self._default_reducer: str | None = None

    # --- paths and lifecycle ------------------------------------------------------------

    def session_path(self, session_id: str) -> Path:
        """Path of a session's file."""
        return self.layout.session_path(session_id)

    def log_path(self, session_id: str) -> Path:
        """Path of a session's event log."""
        return self.layout.log_path(session_id)

    def snapshot_path(self, session_id: str, reducer: str | None = None) -> Path:
        """Path of the snapshot `reducer` (default: the default reducer) makes of a session."""
        if self._default_reducer is None:
            self._default_reducer = default_fingerprint()
        return self.layout.snapshot_path(session_id, reducer, self._default_reducer)

    async def open(self) -> None:
        """Check (or create) the data directory; remove temp files of crashed writers."""
        self.snapshot_path("x")  # compute the default reducer's fingerprint once, here
        await anyio.to_thread.run_sync(prepare_directory, self.layout, self.read_only)

    async def close(self) -> None:
        """Refuse new appends, let the one in progress finish, close every log."""
        self._closed = True
        self._commits.close()
        await anyio.to_thread.run_sync(self._logs.close_all)

    def _writable(self) -> None:
        if self.read_only:
            raise StoreLockedError("this store was opened read-only; it cannot write")
        if self._closed:
            raise StoreClosedError("this store was closed; open a new one")

    # --- sessions -------------------------------------------------------------------------

    async def create_session(
        self, session: Session, events: Sequence[PendingEvent] = ()
    ) -> AppendResult:
        """Store a session and its first events, whole or not at all (see the contract)."""
        self._writable()
        return await anyio.to_thread.run_sync(
            create_session_files, self._logs, self._index, session, list(events)
        )

    async def create_session_from_pages(
        self, session: Session, pages: AsyncIterator[Sequence[PendingEvent]]
    ) -> int:
        """Write the new session's log page by page under a temp name, then make it real."""
        self._writable()
        builder = await anyio.to_thread.run_sync(SessionBuilder, self._logs, session.id)
        try:
            async for page in pages:
                await anyio.to_thread.run_sync(builder.write, list(page))
            return await anyio.to_thread.run_sync(builder.finish, self._index, session)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(builder.abort)
            raise

    async def get_session(self, session_id: str) -> Session:
        """Return a session with `event_count` and `updated_at` from its log."""
        return await anyio.to_thread.run_sync(self._get_session_sync, session_id)

    def _get_session_sync(self, session_id: str) -> Session:
        return session_with_head(self._logs, session_id)

    async def update_session(self, session_id: str, changes: SessionChanges) -> Session:
        """Change a session's name, labels or budget (its file is replaced atomically)."""
        self._writable()
        await anyio.to_thread.run_sync(
            update_session_file, self._logs, self._index, session_id, changes
        )
        return await self.get_session(session_id)

    async def list_sessions(self, query: SessionQuery) -> SessionPage:
        """Return a page of sessions, newest first (see the contract)."""
        return await anyio.to_thread.run_sync(list_page, self._index, query, self._get_session_sync)

    async def find_session_ids(self, prefix: str, limit: int) -> list[str]:
        """Return up to `limit` ids that start with `prefix`, sorted (an exact match first)."""
        return await anyio.to_thread.run_sync(find_ids, self.layout, prefix, limit)

    async def delete_session(self, session_id: str, *, expected_seq: int | None = None) -> None:
        """Remove a session, its log and its snapshots (see the contract)."""
        self._writable()
        await anyio.to_thread.run_sync(
            delete_session_files, self._logs, self._index, session_id, expected_seq
        )

    async def storage_size(self, session_id: str) -> int | None:
        """Return the bytes of a session's file, log and snapshots."""
        return await anyio.to_thread.run_sync(self._size_sync, session_id)

    def _size_sync(self, session_id: str) -> int:
        layout = self.layout
        try:
            total = os.lstat(layout.session_path(session_id)).st_size
        except FileNotFoundError:
            raise SessionNotFoundError(session_id) from None
        for path in (layout.log_path(session_id), *layout.snapshot_paths(session_id)):
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(path).st_size
        return total

    # --- events ---------------------------------------------------------------------------

    async def last_seq(self, session_id: str) -> int:
        """Return the session's last sequence number (one `fstat` when nothing changed)."""
        return (await self.head(session_id))[0]

    async def head(self, session_id: str) -> tuple[int, datetime | None]:
        """The last sequence number and the session's creation time (see `Backend.head`)."""
        head = unchanged_head(self._logs.peek(session_id))
        if head is not None:
            return head
        return await anyio.to_thread.run_sync(head_sync, self._logs, session_id)

    async def append(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """Append a batch (see the contract), in the commit thread's next round."""
        self._writable()
        if self._logs.peek(session_id) is None:
            # Open the log on a worker thread (an unknown session fails here), so that the
            # commit thread seldom has to stop its pipeline to open one.
            await anyio.to_thread.run_sync(self._logs.get, session_id)
        result = await self._commits.append(session_id, batch, expected_seq)
        if result.written:
            AppendRegistry.notify(self._key, session_id)
        return result

    def append_blocking(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        """Append on the calling thread, blocking until the lines are durable.

        The same rules as `append`, for a caller that already has a thread of its own and
        waits anyway (`SyncStore`): no hop to a worker and back. Thread-safe; appends of
        this process's other threads and tasks, and of other processes, are ordered with it.
        """
        self._writable()
        result = self._append_sync(session_id, batch, expected_seq)
        if result.written:
            AppendRegistry.notify(self._key, session_id)
        return result

    def _append_sync(
        self, session_id: str, batch: Sequence[PendingEvent], expected_seq: int | None
    ) -> AppendResult:
        # On the thread of an event loop committing a flight of this log (a listener of
        # a SyncStore's appends, on its loop): that flight lands first (see `land_held`).
        self._commits.land_held(session_id)
        for _ in range(3):
            view = self._logs.get(session_id)
            with view.mutex:
                if self._closed:
                    raise StoreClosedError("the store was closed; nothing was appended")
                if view.fd is None:  # closed (evicted) meanwhile
                    self._logs.forget(session_id, only=view)
                    continue
                return append_alone(
                    self._logs,
                    view,
                    batch,
                    expected_seq,
                    fsync=self.durability == "fsync",
                )
        raise StorageError(f"cannot open {self.layout.log_path(session_id)} for appending")

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        """Return the events that pass `flt`; a damaged line in range raises `CorruptLogError`."""
        return await read_events(self._logs, session_id, flt)

    async def batch_marks(self, session_id: str) -> Mapping[int, int]:
        """The `batch_end` marks of the session's lines (see `Backend.batch_marks`)."""
        return await anyio.to_thread.run_sync(batch_marks, self._logs, session_id)

    async def wait_for_append(self, session_id: str, after_seq: int) -> int:
        """Wait for the log to pass `after_seq`: at once for appends in this process."""
        delay = 0.01
        while True:
            with AppendRegistry.waiting(self._key, session_id) as woken:
                last = await self.last_seq(session_id)
                if last > after_seq:
                    return last
                with anyio.move_on_after(delay):
                    if woken is None:
                        await anyio.sleep_forever()
                    else:
                        await woken.wait()
                        delay = 0.005
            delay = min(delay * 2, 0.5)

    # --- snapshots ------------------------------------------------------------------------

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        """Replace the snapshot of (session, reducer); a failure only logs a warning."""
        if self.read_only:
            return
        path = self.snapshot_path(snapshot.session_id, snapshot.reducer)
        try:
            await anyio.to_thread.run_sync(self._save_snapshot_sync, snapshot, path)
        except (OSError, StorageError) as exc:
            logger.warning("%s: could not save a snapshot (%s); state is unaffected", path, exc)

    def _save_snapshot_sync(self, snapshot: SnapshotRecord, path: Path) -> None:
        sid = snapshot.session_id
        # Under the directory lock, so that it cannot land after another process deleted
        # the session and created it again (its snapshot would pass for the new one's).
        with self._logs.directory_lock(exclusive=False):
            if not os.path.lexists(self.layout.session_path(sid)):
                return
            view = self._logs.peek(sid)
            if view is not None and view.ino:
                try:
                    if os.lstat(self.layout.log_path(sid)).st_ino != view.ino:
                        return
                except FileNotFoundError:
                    return
            path.parent.mkdir(mode=atomic.DIR_MODE, parents=True, exist_ok=True)
            atomic.write_file_atomic(path, encode_snapshot(snapshot), exclusive=False)

    async def load_snapshot(self, session_id: str, reducer: str | None) -> SnapshotRecord | None:
        """Return the snapshot `reducer` made of the session, or None."""
        path = self.snapshot_path(session_id, reducer)
        return await anyio.to_thread.run_sync(read_snapshot, session_id, reducer, path)

    async def load_session_and_snapshot(
        self, session_id: str, reducer: str | None
    ) -> tuple[Session, SnapshotRecord | None]:
        """Return the session and its snapshot in one worker-thread hop."""
        return await anyio.to_thread.run_sync(self._session_and_snapshot_sync, session_id, reducer)

    def _session_and_snapshot_sync(
        self, session_id: str, reducer: str | None
    ) -> tuple[Session, SnapshotRecord | None]:
        session = self._get_session_sync(session_id)
        path = self.snapshot_path(session_id, reducer)
        return session, read_snapshot(session_id, reducer, path)

    # --- verification ---------------------------------------------------------------------

    async def verify(self, session_id: str | None, *, repair: bool) -> VerifyReport:
        """Check every line, torn tail, batch, session file and stray file (see verify.py)."""
        from agentstore.backends.file.verify import verify_files

        if repair:
            self._writable()
        return await anyio.to_thread.run_sync(verify_files, self.layout, session_id, repair)


def _gone_or_closed(ref: weakref.ref[FileBackend]) -> bool:
    backend = ref()
    return backend is None or backend._closed


def _alive(ref: weakref.ref[FileBackend]) -> FileBackend:
    backend = ref()
    if backend is None:
        raise StoreClosedError("the store was closed; nothing was appended")
    return backend

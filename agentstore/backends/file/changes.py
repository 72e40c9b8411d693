"""Changing a stored session: its session file replaced (`update_session_file`), or the
session and every file of it deleted (`delete_session_files`).

Both run under the data directory's exclusive lock, so that neither interleaves with
another process creating the session or opening its log, and both keep the session index
in step. A deletion with `expected_seq` checks it under the log's lock, as appends take
it. Apart from `backend.py`, which only hands these to a worker thread.
"""

from __future__ import annotations

import contextlib
import os

from agentstore.backends.base import UNSET, SessionChanges
from agentstore.backends.file import atomic
from agentstore.backends.file.flocks import write_locked
from agentstore.backends.file.log import Logs
from agentstore.backends.file.sessions import SessionIndex, encode_session, read_session
from agentstore.errors import ConcurrencyError, SessionNotFoundError, StorageError

__all__ = ["delete_session_files", "update_session_file"]


def update_session_file(
    logs: Logs, index: SessionIndex, session_id: str, changes: SessionChanges
) -> None:
    """Replace a session's file with one holding `changes` (atomically)."""
    layout = logs.layout
    with logs.directory_lock(exclusive=True):
        session, has_log, _ = read_session(layout, session_id)
        # A Go session without events has no log yet: do not promise one it lacks.
        has_log = has_log or os.path.lexists(layout.log_path(session_id))
        if changes.name is not UNSET:
            session.name = changes.name
        if changes.labels is not UNSET:
            session.labels = dict(changes.labels)
        if changes.budget is not UNSET:
            session.budget = changes.budget
        path = layout.session_path(session_id)
        try:
            data = encode_session(session, has_log=has_log)
            atomic.write_file_atomic(path, data, exclusive=False)
        except OSError as exc:
            raise StorageError(f"cannot update {path}: {exc}") from exc
    index.record(session)


def delete_session_files(
    logs: Logs, index: SessionIndex, session_id: str, expected_seq: int | None
) -> None:
    """Remove a session, its log and its snapshots (if its log ends at `expected_seq`)."""
    view = logs.get(session_id) if expected_seq is not None else None
    layout = logs.layout
    with contextlib.ExitStack() as held:
        held.enter_context(logs.directory_lock(exclusive=True))
        if view is not None and view.fd is not None:
            # The check and the deletion under the log's lock, as appends take it:
            # an append by any process lands either before the check or never.
            held.enter_context(view.mutex)
            held.enter_context(write_locked(view))
            logs.check_not_replaced(view)
            logs.catch_up_locked(view)
            if view.last_seq != expected_seq:
                raise ConcurrencyError(session_id, expected_seq or 0, view.last_seq)
        try:
            # The session file goes first: once it is gone the session is gone, and a
            # crash before the rest is cleaned up leaves only invisible files behind.
            os.unlink(layout.session_path(session_id))
        except FileNotFoundError as exc:
            raise SessionNotFoundError(session_id) from exc
        except OSError as exc:
            raise StorageError(f"cannot delete session {session_id!r}: {exc}") from exc
        index.forget(session_id)
        for path in (layout.log_path(session_id), *layout.snapshot_paths(session_id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for directory in (layout.sessions_dir, layout.events_dir):
            atomic.fsync_dir(directory)
    logs.forget(session_id)

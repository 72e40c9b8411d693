"""The head of a session's log (its last sequence number), and a session counted from it.

Asked for by every append with `expected_seq`, every `last_seq` and every poll of a
stream: answered on the event loop with one `fstat` when nothing changed
(`unchanged_head`), else by a worker thread that catches up with the log (`head_sync`).
Apart from `backend.py` because the fast path's reasoning (when an unchanged size and
link count are not enough) is longer than the code it guards.
"""

from __future__ import annotations

import os
from datetime import datetime

from agentstore.backends.file.log import Logs
from agentstore.backends.file.logview import LogView
from agentstore.backends.file.sessions import read_session
from agentstore.errors import SessionNotFoundError
from agentstore.session import Session

__all__ = ["head_sync", "session_with_head", "unchanged_head"]


def unchanged_head(view: LogView | None) -> tuple[int, datetime | None] | None:
    """Return a log's head if its view shows that nothing changed (no I/O but an `fstat`).

    None means: look on a worker thread (`head_sync`).
    """
    fd = view.fd if view is not None else None
    if view is None or fd is None:
        return None
    # Unchanged size and still linked: nothing was appended (by anyone). The
    # descriptor may be closed by a worker thread meanwhile (and its number
    # reused: hence the inode): then take the slow path. Still linked is not
    # enough: a deleted log may keep a link elsewhere (a backup tool's hard link),
    # and a session made again with this id has another file. A link or unlink
    # changes the file's ctime and not its mtime (a write sets both alike): if they
    # differ, the log's name must still lead to this file (one stat more), unless
    # it did at this very ctime already (a log copied with its mtime kept, then
    # only read, has them differ for good: one stat, not one per call).
    try:
        st = os.fstat(fd)
        if st.st_nlink and st.st_size == view.size and st.st_ino == view.ino:
            ctime = st.st_ctime_ns
            if ctime == st.st_mtime_ns or ctime == view.named_ctime:
                return view.last_seq, view.created_at
            if os.stat(view.path, follow_symlinks=False).st_ino == view.ino:
                view.named_ctime = ctime
                return view.last_seq, view.created_at
    except OSError:
        pass
    return None


def head_sync(logs: Logs, session_id: str) -> tuple[int, datetime | None]:
    """Return the last sequence number and the creation time, caught up with the log."""
    view = logs.get(session_id)
    with view.mutex:
        if view.fd is not None:
            logs.check_not_replaced(view)  # see `unchanged_head`: the name, not the file
        return view.last_seq, view.created_at


def session_with_head(logs: Logs, session_id: str) -> Session:
    """Return a session with `event_count` and `updated_at` from its log."""
    session, _, _ = read_session(logs.layout, session_id)
    try:
        view = logs.get(session_id)
    except SessionNotFoundError:
        # This process's view was of a session deleted since: look at the new one.
        session, _, _ = read_session(logs.layout, session_id)
        view = logs.get(session_id)
    with view.mutex:
        last_seq, last_ts = view.last_seq, view.last_ts
    session.event_count = last_seq
    created = session.created_at
    session.updated_at = last_ts if last_ts is not None and last_ts > created else created
    return session

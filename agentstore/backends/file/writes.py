"""Writing a new session's first events: whole, or (after a crash) nothing.

Appends to an existing log are `group.py`'s (one log's share of a commit) and
`commits.py`'s (the commit thread).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from agentstore.backends.base import (
    AppendResult,
    PendingEvent,
    PlannedAppend,
    plan_append,
)
from agentstore.backends.file import atomic
from agentstore.backends.file.layout import temp_path
from agentstore.backends.file.log import Logs
from agentstore.backends.file.sessions import SessionIndex, encode_session
from agentstore.backends.idset import CheckedPage, SeenIds
from agentstore.backends.types import check_batch_marks
from agentstore.codec import encode_line
from agentstore.errors import InvalidInputError, SessionExistsError, StorageError
from agentstore.session import Session

__all__ = ["SessionBuilder", "create_session_files"]

logger = logging.getLogger("agentstore")


class SessionBuilder:
    """Writes a new session's log under a temp name, a page at a time; `finish` makes it real.

    The session exists only once `finish` has renamed the synced log into place and linked
    the session file after it, so a crash (or `abort`) at any point leaves the whole
    session or nothing: a stray temp log, removed when a writer next opens the directory.
    A fork or an import of any size is written this way without holding it all in memory.
    """

    def __init__(self, logs: Logs, session_id: str) -> None:
        self.logs = logs
        self.session_id = session_id
        if os.path.lexists(logs.layout.session_path(session_id)):
            raise SessionExistsError(session_id)  # fail before writing anything
        self.tmp = temp_path(logs.layout.log_path(session_id))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            self.fd = os.open(self.tmp, flags, atomic.FILE_MODE)
        except OSError as exc:
            raise StorageError(f"cannot create session {session_id!r}: {exc}") from exc
        self.last_seq = 0
        self.last_ts: datetime | None = None
        # The ids written, as hashes (not a dict of the strings): a page's id that may be
        # among them is looked up in the log written so far (`_written`). None once a
        # checked page came (an import's: its ids need no look-up, nor remembering).
        self.ids: SeenIds | None = SeenIds()
        self.open_batch: int | None = None  # the end of a batch the marks so far opened

    def write(self, events: Sequence[PendingEvent]) -> PlannedAppend:
        """Number and write the next page of events (ids already written are skipped)."""
        sid = self.session_id
        if isinstance(events, CheckedPage):
            self.ids, maybe = None, []
        elif self.ids is None:
            maybe = [p.id for p in events]  # after checked pages: look every id up
        else:
            # Added before the plan: an id the page repeats is a hit too, and found
            # unwritten (the plan skips it as a repeat within the batch).
            maybe = [p.id for p in events if self.ids.add(p.id)]
        plan = plan_append(
            sid,
            events,
            last_seq=self.last_seq,
            last_ts=self.last_ts,
            known_ids=self._written(maybe) if maybe else {},
            now=datetime.now(UTC),
        )
        self.open_batch = check_batch_marks(plan.new, self.open_batch)
        if plan.new:
            try:
                # The log becomes visible whole (renamed) or not at all: no batch marks of
                # its own, only those a copied session brings (`PendingEvent.batch_end`).
                atomic.write_all(
                    self.fd,
                    b"".join(
                        encode_line(
                            p.id, sid, seq, p.type, p.payload_json, ts, p.metadata_json, p.batch_end
                        )
                        for p, seq, ts in plan.new
                    ),
                )
            except OSError as exc:
                raise StorageError(f"cannot create session {sid!r}: {exc}") from exc
        self.last_seq, self.last_ts = plan.last_seq, plan.last_ts
        return plan

    def _written(self, ids: list[str]) -> dict[str, int]:
        """Which of `ids` the log written so far has, with their sequence numbers.

        Read from the temp log, line by line: only for the ids whose hash was seen (a
        repeat, or two ids of one hash: rare), or a plain page after checked ones.
        """
        if not self.last_seq:
            return {}
        # A line starts with its id, as JSON, then `,"session_id":` (a quote inside the id
        # is escaped: the first such comma ends it).
        wanted = {orjson.dumps(event_id): event_id for event_id in ids}
        found: dict[str, int] = {}
        try:
            with open(self.tmp, "rb") as log:
                for seq, line in enumerate(log, 1):
                    key = line[6 : line.find(b',"session_id":')]
                    if key in wanted:
                        found[wanted[key]] = seq
        except OSError as exc:
            raise StorageError(f"cannot create session {self.session_id!r}: {exc}") from exc
        return found

    def finish(self, index: SessionIndex, session: Session) -> int:
        """Sync the log, rename it into place and link the session file; return its length."""
        sid = self.session_id
        layout = self.logs.layout
        log_path = layout.log_path(sid)
        if self.open_batch is not None:
            # A marked last line: the next writer to open the log would cut the batch.
            raise InvalidInputError(f"a batch mark names event {self.open_batch}, beyond the log")
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            with self.logs.directory_lock(exclusive=True):
                if os.path.lexists(layout.session_path(sid)):
                    raise SessionExistsError(sid)
                # Replacing any log a deletion left: until the session file exists, the
                # session does not.
                os.replace(self.tmp, log_path)
                atomic.fsync_dir(layout.events_dir)
                for path in layout.snapshot_paths(sid):
                    os.unlink(path)
                self.logs.forget(sid)
                # Linking is the claim: of several processes creating one id, one succeeds.
                try:
                    atomic.write_file_atomic(
                        layout.session_path(sid), encode_session(session), exclusive=True
                    )
                except FileExistsError:
                    raise
                except OSError:
                    # No session file names the log: take it back (under the directory
                    # lock, nobody else can have claimed the id meanwhile).
                    with contextlib.suppress(OSError):
                        os.unlink(log_path)
                    raise
        except FileExistsError as exc:
            raise SessionExistsError(sid) from exc
        except OSError as exc:
            raise StorageError(f"cannot create session {sid!r}: {exc}") from exc
        index.record(session)
        return self.last_seq

    def abort(self) -> None:
        """Give up: close and remove the temp log (nothing was visible)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def create_session_files(
    logs: Logs, index: SessionIndex, session: Session, events: list[PendingEvent]
) -> AppendResult:
    """Create a session with its first events: the whole session or, after a crash, nothing."""
    builder = SessionBuilder(logs, session.id)
    try:
        plan = builder.write(events)
        builder.finish(index, session)
    except BaseException:
        builder.abort()
        raise
    stored = [e for e in plan.events if e is not None]
    result = [
        e if e is not None else stored[plan.duplicates[i] - 1] for i, e in enumerate(plan.events)
    ]
    return AppendResult(result, len(plan.new), 0, session.created_at)

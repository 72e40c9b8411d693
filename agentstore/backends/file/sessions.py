"""Session files, and the session index that lets a listing read one file.

A session file is `sessions/<id>.json`, the session as JSON (the Go original's fields).
Ours also say `"has_log": true`: the session was created with its log, so a missing log is
corruption. A session of the Go original has no log until its first event.

The index, `<data dir>/sessions.index.jsonl`, holds every session's creation time and
labels, one line per session file seen and one per deletion::

    {"id":"…","ino":1234,"created":"…Z","labels":{"env":"dev"}}
    {"id":"…","deleted":true}

It is a cache, never the truth: a line counts only while the session file it describes has
the same inode (a rewrite by agentstore, or a session created again, makes a new one), and
every session of a listed page is read from its file and filtered again, so a stale line
(an edit in place) can never put a session on a page, or in a prune, it does not belong
to; at worst it leaves out a session whose labels were edited in place to match, until its
file is next rewritten. Sessions it does not describe are read from their files, and a
writable store appends what it learned.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from agentstore._turns import ThreadTurns
from agentstore.backends.file import atomic
from agentstore.backends.file.layout import Layout, is_valid_id
from agentstore.backends.types import SkippedSession
from agentstore.errors import CorruptLogError, SessionNotFoundError, StorageError
from agentstore.events import parse_timestamp
from agentstore.session import Session

__all__ = [
    "IndexEntry",
    "SessionIndex",
    "encode_session",
    "passed_over",
    "read_session",
    "sort_key",
]

# A child of "agentstore": whoever reports `SessionPage.skipped` itself (the CLI) can mute
# these warnings without muting the others.
logger = logging.getLogger("agentstore.listing")

HAS_LOG = "has_log"
# Rewrite the index once it holds this many more lines than there are sessions.
_COMPACT_SLACK = 1000
# A scan of the sessions directory is reused only if the directory had not changed for
# this long when the scan began (see `SessionIndex.newest_first`).
_SETTLED_NS = 2_000_000_000

IndexEntry = tuple[str, str, dict[str, str]]
"""(sort key of created_at, session id, labels)."""

_Known = dict[str, tuple[int, str, dict[str, str]]]
"""Session id -> (inode of its session file, sort key of created_at, labels)."""


@dataclass(frozen=True, slots=True)
class _Parsed:
    """The index file as parsed up to `size` bytes (whole lines), while its inode is `ino`."""

    ino: int
    size: int
    known: _Known
    lines: int


def _parse_lines(known: _Known, data: bytes) -> int:
    """Apply the index lines in `data` to `known`; return how many lines there were."""
    lines = data.split(b"\n")
    turns = ThreadTurns()
    for line in lines:
        turns.maybe()
        if not line:
            continue
        try:
            obj = orjson.loads(line)
            if obj.get("deleted"):
                known.pop(str(obj["id"]), None)
                continue
            known[str(obj["id"])] = (int(obj["ino"]), str(obj["created"]), obj["labels"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a torn, foreign or older line: the session file is read instead
    return len(lines) - 1  # `data` ends with a newline


def sort_key(created: datetime) -> str:
    """A string that sorts like the time: RFC 3339 UTC, always with 6 fraction digits."""
    utc = created.astimezone(UTC)
    # The year by hand: glibc's %Y does not pad years before 1000 to four digits, and
    # "500-..." sorted after "2026-..." (an imported session of year 500 listed newest).
    return f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.%fZ")


def encode_session(session: Session, *, has_log: bool = True) -> bytes:
    """Return the bytes of a session's file (`has_log`: its log exists, see the docstring)."""
    obj = session.to_dict()
    if has_log:
        obj[HAS_LOG] = True
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)


def read_session(layout: Layout, session_id: str) -> tuple[Session, bool, os.stat_result]:
    """Read and check a session file: (session, whether it has a log, its stat).

    Raises `SessionNotFoundError` if there is none and `CorruptLogError` (naming the file)
    if it is not a session file for this id: an id written inside a file is never trusted.
    """
    path = layout.session_path(session_id)
    try:
        fd = atomic.open_file(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise SessionNotFoundError(session_id) from exc
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    try:
        st = os.fstat(fd)
        raw = os.read(fd, max(st.st_size, 1) + 1)
        while more := os.read(fd, 1 << 20):
            raw += more
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    finally:
        os.close(fd)
    try:
        obj = orjson.loads(raw)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        has_log = obj.pop(HAS_LOG, False) is True
        if obj.get("id") != session_id:
            raise ValueError(f"it names session {obj.get('id')!r}, not {session_id!r}")
        session = Session.model_validate(obj)
    except ValueError as exc:
        detail = str(exc).splitlines()[0]
        raise CorruptLogError(
            f"{path} is not a valid session file ({detail}); the session cannot be used "
            "until it is restored or deleted",
            path=str(path),
        ) from exc
    # A Go session file keeps a count of its events: one that has any has a log too.
    if isinstance(obj.get("event_count"), int) and obj["event_count"] > 0:
        has_log = True
    return session, has_log, st


def passed_over(layout: Layout, session_id: str, what: str) -> SkippedSession:
    """Say why a listing passed over a session, and log it (the server's log, say).

    The log names the file as the store was opened with it; `SkippedSession.reason` names
    files relative to the data directory (see there).
    """
    logger.warning("listing sessions: %s", what)
    if str(layout.root) != ".":  # the paths are relative already
        what = what.replace(f"{layout.root}{os.sep}", "")
    return SkippedSession(session_id, what)


def _entry_of(obj: Any) -> tuple[str, dict[str, str]] | None:
    """(sort key, labels) of a decoded session file, or None if it is not one."""
    if not isinstance(obj, dict):
        return None
    try:
        created = sort_key(parse_timestamp(obj.get("created_at")))
    except (ValueError, TypeError):
        return None
    labels = obj.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return None
    return created, {str(k): v for k, v in labels.items()}


class SessionIndex:
    """Reads and extends the session index of one data directory."""

    def __init__(self, layout: Layout, *, writable: bool) -> None:
        self.layout = layout
        self.path = layout.index_path
        self._writable = writable
        # What was parsed of the index file so far (see `_load`); listings run on worker
        # threads, so the parse is serialised.
        self._parsed: _Parsed | None = None
        self._parse_lock = threading.Lock()
        self._scanned: tuple[tuple[int, int, int], list[IndexEntry]] | None = None
        """The last reusable scan: the directory's (inode, mtime, size), its entries."""

    def _append(self, lines: list[bytes]) -> None:
        if not self._writable or not lines:
            return
        try:
            fd = atomic.open_file(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        except (OSError, StorageError):
            return  # a cache: never fail an operation because it cannot be written
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            atomic.write_all(fd, b"".join(lines))
        except OSError:
            pass
        finally:
            os.close(fd)

    @staticmethod
    def _line(session_id: str, ino: int, created: str, labels: dict[str, str]) -> bytes:
        obj = {"id": session_id, "ino": ino, "created": created, "labels": labels}
        return orjson.dumps(obj) + b"\n"

    def record(self, session: Session) -> None:
        """Note a session file just written (call right after writing it)."""
        try:
            ino = os.stat(self.layout.session_path(session.id), follow_symlinks=False).st_ino
        except OSError:
            return
        self._append([self._line(session.id, ino, sort_key(session.created_at), session.labels)])

    def forget(self, session_id: str) -> None:
        """Note a session deleted (call right after removing its file)."""
        self._append([orjson.dumps({"id": session_id, "deleted": True}) + b"\n"])

    def _load(self) -> tuple[_Known, int]:
        """The index's entries and line count, parsing only what was appended since last time.

        The file only grows (appends of whole lines) or is replaced whole (a new inode),
        so what was parsed stays true while the inode is the same. Only whole lines are
        taken: a line being appended right now is read next time. Each result is a dict
        of its own (copied, then extended), so listings on other threads never see one
        change under them.
        """
        try:
            fd = atomic.open_file(self.path, os.O_RDONLY)
        except (OSError, StorageError):
            return {}, 0
        try:
            with self._parse_lock:
                st = os.fstat(fd)
                parsed = self._parsed
                if parsed is None or parsed.ino != st.st_ino or parsed.size > st.st_size:
                    parsed = _Parsed(st.st_ino, 0, {}, 0)
                if parsed.size < st.st_size:
                    tail = atomic.read_from(fd, parsed.size)
                    whole = tail.rfind(b"\n") + 1
                    if whole:
                        known = dict(parsed.known)
                        count = _parse_lines(known, tail[:whole])
                        parsed = _Parsed(
                            st.st_ino, parsed.size + whole, known, parsed.lines + count
                        )
                self._parsed = parsed
        except OSError:
            return {}, 0
        finally:
            os.close(fd)
        return parsed.known, parsed.lines

    def _scan(self, skipped: list[SkippedSession]) -> tuple[list[IndexEntry], bool]:
        """Every session's (sort key, id, labels), unsorted, and whether all came from the index.

        An entry is taken from the index while the session file has the inode it had (the
        directory scan gives it without a `stat`: 10,000 `stat`s would double the cost of
        a listing). What an edit in place could make stale is checked again by the caller
        from the files it reads (`list_page`). A session file that cannot be read is left
        out here and added to `skipped`.
        """
        known, line_count = self._load()
        from_index = True
        out: list[IndexEntry] = []
        learned: list[bytes] = []
        try:
            scan = os.scandir(self.layout.sessions_dir)
        except FileNotFoundError:
            return out, True
        turns = ThreadTurns()
        with scan:
            for entry in scan:
                turns.maybe()
                name = entry.name
                session_id = name[:-5]
                # Cheap checks first: every name we list is a valid id plus `.json`.
                if not name.endswith(".json") or not is_valid_id(session_id):
                    continue
                ino = entry.inode()
                cached = known.get(session_id)
                if cached is not None and cached[0] == ino:
                    out.append((cached[1], session_id, cached[2]))
                    continue
                from_index = False
                found = self._read_entry(session_id)
                if found is None:
                    continue
                if isinstance(found, SkippedSession):
                    skipped.append(found)
                    continue
                out.append((found[0], session_id, found[1]))
                learned.append(self._line(session_id, ino, found[0], found[1]))
        if self._writable and line_count > len(out) * 2 + _COMPACT_SLACK:
            self._rewrite(out, known, learned)
        else:
            self._append(learned)
        return out, from_index

    def newest_first(self, skipped: list[SkippedSession] | None = None) -> list[IndexEntry]:
        """Every session's entry, newest first (do not change the list: it may be shared).

        The session files that could not be read are left out, and added to `skipped`.

        The last scan's result while the sessions directory is unchanged: a scan of
        10,000 session files takes about 20 ms of a worker thread, holding the GIL (and
        so the event loop) most of it. The directory's inode, mtime and size change with
        every file created, renamed over or removed in it. A scan is kept only if the
        directory had not changed for `_SETTLED_NS` when it began: the mtime comes from
        the file system's coarse clock, and a change in the same tick as the scan would
        leave it as it was (git's "racily clean" files). A session file edited in place
        changes none of them, so a scan is kept only if every entry came from the index
        (whose own rule covers such edits: see the module docstring); one that read a
        session file, or could not (a file being rewritten in place by the Go original, a
        read-only store's sessions the index does not know), is not.
        """
        try:
            st = os.stat(self.layout.sessions_dir)
        except FileNotFoundError:
            return []
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        kept = self._scanned
        if kept is not None and kept[0] == stamp:
            return kept[1]
        began = time.time_ns()
        entries, from_index = self._scan(skipped if skipped is not None else [])
        # Sorted by one string per entry (the sort key is fixed-width; "\0" sorts below
        # any character, so this is the order of the (key, id) pairs): the sort is one
        # call that holds the GIL throughout, and strings halve it against tuples.
        turns = ThreadTurns()
        keys = []
        for key, sid, _ in entries:
            turns.maybe()
            keys.append(f"{key}\0{sid}")
        order = sorted(range(len(entries)), key=keys.__getitem__, reverse=True)
        ordered = [entries[i] for i in order]
        if from_index and began - st.st_mtime_ns > _SETTLED_NS:
            self._scanned = (stamp, ordered)
        return ordered

    def _read_entry(self, session_id: str) -> tuple[str, dict[str, str]] | SkippedSession | None:
        """The session's (sort key, labels); why not, if its file cannot be read; None if
        it is gone."""
        path = self.layout.session_path(session_id)
        try:
            obj = orjson.loads(atomic.read_file(path))
        except FileNotFoundError:
            return None  # deleted since the scan
        except (OSError, ValueError, StorageError) as exc:
            # One bad file must not hide the others: say where it is, and go on.
            # Ours (a symlink, a directory) name the file already.
            mine = isinstance(exc, StorageError)
            what = str(exc) if mine else f"{path} is not a readable session file: {exc}"
            return passed_over(self.layout, session_id, what)
        entry = _entry_of(obj) if isinstance(obj, dict) and obj.get("id") == session_id else None
        if entry is None:
            what = (
                f"{path} is not a valid session file for id {session_id!r}; skipped (see "
                "`agentstore verify`)"
            )
            return passed_over(self.layout, session_id, what)
        return entry

    def _rewrite(
        self,
        out: list[IndexEntry],
        known: _Known,
        learned: list[bytes],
    ) -> None:
        """Replace the index with one line per live session (drops deleted ones)."""
        fresh = {orjson.loads(line)["id"]: line for line in learned}
        lines = []
        for created, session_id, labels in out:
            line = fresh.get(session_id)
            if line is None:
                line = self._line(session_id, known[session_id][0], created, labels)
            lines.append(line)
        with contextlib.suppress(OSError):
            atomic.write_file_atomic(self.path, b"".join(lines), exclusive=False)

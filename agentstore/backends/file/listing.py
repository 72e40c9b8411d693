"""Listing sessions from a data directory: a page newest first, and ids by prefix.

A page is taken from the session index's entries (`SessionIndex.newest_first`), then each
session on it is read from its file and filtered again: the index is a cache, the files
are the truth (see `sessions.py`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import datetime
from itertools import islice

from agentstore._gc import gc_paused
from agentstore._turns import ThreadTurns
from agentstore.backends.base import (
    SessionPage,
    SessionQuery,
    SkippedSession,
    parse_session_cursor,
    session_cursor,
)
from agentstore.backends.file.layout import Layout, classify
from agentstore.backends.file.sessions import SessionIndex, passed_over, sort_key
from agentstore.errors import SessionNotFoundError, StorageError
from agentstore.session import Session

__all__ = ["find_ids", "list_page", "matches"]


def matches(labels: dict[str, str], wanted: dict[str, str] | None) -> bool:
    """Tell whether a session with `labels` has every one of `wanted`."""
    return not wanted or all(labels.get(k) == v for k, v in wanted.items())


def list_page(
    index: SessionIndex, query: SessionQuery, get_session: Callable[[str], Session]
) -> SessionPage:
    """Return a page of sessions newest first, read from their files (see the contract).

    A session file that cannot be read is left out, named in `SessionPage.skipped` and
    logged: one bad file never hides the others. The cyclic collector is paused
    meanwhile: the listing makes an entry per session (tens of thousands of short-lived
    objects), and collections while they are alive walk them again and again, and the
    whole heap now and then (the longest pause of the event loop in a listing of 10,000
    sessions: 20 ms).
    """
    with gc_paused():
        return _list_page(index, query, get_session)


def _list_page(
    index: SessionIndex, query: SessionQuery, get_session: Callable[[str], Session]
) -> SessionPage:
    skipped: list[SkippedSession] = []
    ordered = index.newest_first(skipped)
    start = 0
    if query.cursor is not None:
        created, after_sid = parse_session_cursor(query.cursor)
        after = (_cursor_key(created), after_sid)
        start = len(ordered)
        for at, (key, sid, _) in enumerate(ordered):
            if (key, sid) < after:
                start = at
                break
    page: list[Session] = []
    more = False
    turns = ThreadTurns()
    for _, sid, labels in islice(ordered, start, None):
        turns.maybe()
        if not matches(labels, query.labels):
            continue
        if len(page) == query.limit:
            more = True
            break
        try:
            session = get_session(sid)
        except SessionNotFoundError:
            continue  # deleted since the scan
        except StorageError as exc:
            # One bad session must not hide the others: say where it is, go on.
            skipped.append(passed_over(index.layout, sid, str(exc)))
            continue
        # The index is a cache: the file just read has the last word on labels.
        if matches(session.labels, query.labels):
            page.append(session)
    return SessionPage(page, session_cursor(page[-1]) if more and page else None, skipped)


def _cursor_key(created: datetime) -> str:
    """The sort key of a cursor's time, which a client may have written.

    A time with no UTC form (year 1 at +14:00, 9999 at -14:00: `astimezone` overflows)
    sorts before, or after, every session's key, as memory and PostgreSQL compare it.
    """
    try:
        return sort_key(created)
    except OverflowError:
        return "" if created.year == 1 else "~"  # "~" sorts after every digit


def find_ids(layout: Layout, prefix: str, limit: int) -> list[str]:
    """Return up to `limit` session ids that start with `prefix`, an exact match first."""
    ids: list[str] = []
    with contextlib.suppress(FileNotFoundError), os.scandir(layout.sessions_dir) as it:
        for entry in it:
            kind, sid = classify("sessions", entry.name)
            if kind == "session" and sid is not None and sid.startswith(prefix):
                ids.append(sid)
    ids.sort(key=lambda sid: (sid != prefix, sid))
    return ids[:limit]

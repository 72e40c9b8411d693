"""The Storage service's long answers, in pages: a session's events (`Read`) and its batch
marks (`BatchMarks`), so that no message grows with the session.

A read of many pages is still one read of one session for the client: once a second page
is due the session is pinned, and a session deleted and made again under its id between
two pages fails the read instead of joining two histories.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import replace
from itertools import islice
from typing import Any

from agentstore import Event, Session
from agentstore.backends.base import Backend, EventFilter
from agentstore.backends.marks import MarkRuns
from agentstore.server import agentstore_pb2 as pb
from agentstore.store.lifecycle_ops import backend_reader, check_same_event, check_same_session

__all__ = ["MARKS_PAGE", "marks_pages", "read_pages"]

_READ_PAGE = 500  # events per message of a long read


MARKS_PAGE = 50_000
"""Batch marks per `BatchMarksPage` (about 0.5 MB: under grpc's 4 MB default limit)."""


async def marks_pages(
    marks: Mapping[int, int] | None,
) -> AsyncGenerator[pb.BatchMarksPage, None]:
    """The pages of `BatchMarks`: one saying no marks are kept (None), or the marks (at
    least one page), in order; runs (`MarkRuns`) a page at a time, never a list of all."""
    if marks is None:
        yield pb.BatchMarksPage(kept=False)
        return
    pairs = marks.pairs() if isinstance(marks, MarkRuns) else iter(sorted(marks.items()))
    page = list(islice(pairs, MARKS_PAGE))
    while True:
        yield pb.BatchMarksPage(kept=True, seqs=[s for s, _ in page], ends=[e for _, e in page])
        page = list(islice(pairs, MARKS_PAGE))
        if not page:
            return


async def read_pages(backend: Backend, sid: str, flt: EventFilter) -> AsyncIterator[list[Any]]:
    """Read `flt` in pages of at most `_READ_PAGE` events, so no message grows unbounded.

    Each page is a backend read of its own, but the client takes the call as one read of
    one session (`RemoteBackend.read`): once a second page is due, the session is pinned
    (looked up, the first page's last event read again), and after each later page its
    creation time is compared and the page before's last event read again. One deleted
    and made again under its id meanwhile fails the read (not_found), as the AgentStore
    service's do (`paging.more_pages`); the answer was the old session's first page and
    the new one's rest. A read of one page costs nothing more.
    """
    left = flt.limit
    start = flt.from_seq
    session: Session | None = None
    last: Event | None = None  # of the page before
    while True:
        size = _READ_PAGE if left is None else min(left, _READ_PAGE)
        page = await backend.read(sid, replace(flt, from_seq=start, limit=size))
        if session is not None and last is not None:
            # Its creation time, and the last event sent read again: a session imported
            # under its id keeps the time of its export, and one re-imported after the pin
            # joined its events to the read (check_same_session alone let it by).
            await check_same_session(backend.get_session, session)
            await check_same_event(backend_reader(backend, sid), sid, last)
        if page:
            yield page
        if len(page) < size:
            return
        if left is not None:
            left -= len(page)
            if left <= 0:
                return
        start = page[-1].sequence_number + 1
        if flt.to_seq is not None and start > flt.to_seq:
            return
        last = page[-1]
        if session is None:
            session = await backend.get_session(sid)
            await check_same_event(backend_reader(backend, sid), sid, last)

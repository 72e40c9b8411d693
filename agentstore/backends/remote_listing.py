"""The remote backend's session listing: the server's pages until the caller's is full.

Each page the server answers with a cursor to read on must bring a session the listing
has not listed yet. A page that does not (no session at all, or only those already
listed, whatever its cursor says) means the server's listing does not advance: a bug,
or a hostile server. Asked again, it was asked for ever: a server answering empty pages,
each with a new cursor, hung the listing, and one answering the same sessions again
filled a listing of 5,000 with its 20 sessions 250 times. It raises `StorageError`
instead. (Not "older than the last": a file store lists a session of the years 1-999
first, and its later pages are right all the same.)

The caller's next page is a call of its own, with the cursor this one returned: the
sessions of the page that gave each recent cursor are kept, so that a page answered
for it with none but those stops too (`Store.list_sessions`, `Store.prune` and the CLI
read listings that way, a page of 1,000 full at the server's first answer).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from agentstore.backends.base import SessionPage, SessionQuery, SkippedSession, session_cursor
from agentstore.errors import StorageError
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.grpc_wire import session_from_pb, skipped_from_pb
from agentstore.session import Session

__all__ = ["PAGE", "Listings"]

PAGE = 1000
"""The server's largest session page."""

_RECENT = 16
"""Cursors handed to callers whose pages' sessions are kept (listings under way at once;
at most 16,000 ids, about a megabyte)."""


class Listings:
    """`RemoteBackend.list_sessions` (see the module docstring)."""

    __slots__ = ("_address", "_call", "_recent")

    def __init__(self, call: Callable[[str, Any], Awaitable[Any]], address: str) -> None:
        self._call = call
        self._address = address
        self._recent: OrderedDict[str, frozenset[str]] = OrderedDict()
        """Cursor handed to a caller -> the ids of the sessions listed before it."""

    async def page(self, query: SessionQuery) -> SessionPage:
        """Ask the server page after page until `query.limit` sessions are found or its
        listing ends; `StorageError` if it does not advance."""
        if query.limit <= 0:
            # The server reads a limit of 0 as "not given" (proto3) and would answer its
            # default page: a page of no sessions is answered here, as every backend does.
            return SessionPage([], None, [])
        found: list[Session] = []
        skipped: dict[SkippedSession, None] = {}  # in order, once each
        cursor = query.cursor
        before = self._recent.get(cursor) if cursor is not None else None
        listed: set[str] = set(before or ())
        while True:
            want = min(query.limit - len(found), PAGE)
            request = pb.ListSessionsRequest(
                limit=want, cursor=cursor or "", labels=query.labels or {}
            )
            reply = await self._call("ListSessions", request)
            page = [session_from_pb(s) for s in reply.sessions]
            skipped.update(dict.fromkeys(skipped_from_pb(reply)))
            cursor = reply.next_cursor or None
            if len(found) + len(page) > query.limit:
                # More than asked for: the page ends at the limit, read on from its last.
                page = page[: query.limit - len(found)]
                cursor = session_cursor(page[-1])
            found += page
            if listed.issuperset(s.id for s in page) if page else cursor is not None:
                # Only sessions listed before (this call's pages, or the page that gave
                # the caller's cursor), or none at all and more to read.
                raise StorageError(
                    f"the agentstore server at {self._address} answered a listing page "
                    "with no session past those listed before: its listing does not advance"
                )
            before = None
            listed.update(s.id for s in page)
            if cursor is None or len(found) >= query.limit:
                if cursor is not None:
                    self._keep(cursor, page)
                return SessionPage(found, cursor, list(skipped))

    def _keep(self, cursor: str, page: list[Session]) -> None:
        recent = self._recent
        recent[cursor] = frozenset(s.id for s in page)
        recent.move_to_end(cursor)
        while len(recent) > _RECENT:
            recent.popitem(last=False)

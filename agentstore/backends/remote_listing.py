"""The remote backend's session listing: the server's pages until the caller's is full.

Each page the server answers with a cursor to read on must bring a session this listing
has not listed yet. A page that does not (no session at all, or only those already
listed, whatever its cursor says) means the server's listing does not advance: a bug,
or a hostile server. (Not "older than the last": a file store lists a session of the
years 1-999 first, and its later pages are right all the same.) Asked again, it was asked
for ever: a server answering empty pages, each with a new cursor, hung the listing, and
one answering the same sessions again filled a listing of 5,000 with its 20 sessions 250
times. It raises `StorageError` instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agentstore.backends.base import SessionPage, SessionQuery, SkippedSession, session_cursor
from agentstore.errors import StorageError
from agentstore.server import agentstore_pb2 as pb
from agentstore.server.grpc_wire import session_from_pb, skipped_from_pb
from agentstore.session import Session

__all__ = ["PAGE", "list_sessions"]

PAGE = 1000
"""The server's largest session page."""


async def list_sessions(
    call: Callable[[str, Any], Awaitable[Any]], address: str, query: SessionQuery
) -> SessionPage:
    """`RemoteBackend.list_sessions`: ask the server (`call`, at `address`) page after page
    until `query.limit` sessions are found or its listing ends (see the module docstring)."""
    if query.limit <= 0:
        # The server reads a limit of 0 as "not given" (proto3) and would answer its
        # default page: a page of no sessions is answered here, as every backend does.
        return SessionPage([], None, [])
    found: list[Session] = []
    skipped: dict[SkippedSession, None] = {}  # in order, once each
    cursor = query.cursor
    listed: set[str] = set()
    while True:
        want = min(query.limit - len(found), PAGE)
        request = pb.ListSessionsRequest(limit=want, cursor=cursor or "", labels=query.labels or {})
        reply = await call("ListSessions", request)
        page = [session_from_pb(s) for s in reply.sessions]
        skipped.update(dict.fromkeys(skipped_from_pb(reply)))
        cursor = reply.next_cursor or None
        if len(found) + len(page) > query.limit:
            # More than asked for: the page ends at the limit, read on from its last.
            page = page[: query.limit - len(found)]
            cursor = session_cursor(page[-1])
        found += page
        if cursor is None or len(found) >= query.limit:
            return SessionPage(found, cursor, list(skipped))
        if listed.issuperset(s.id for s in page):  # nothing new (or nothing at all)
            raise StorageError(
                f"the agentstore server at {address} answered a listing page with no "
                "session past those listed before, and a cursor to read on: its listing "
                "does not advance"
            )
        listed.update(s.id for s in page)

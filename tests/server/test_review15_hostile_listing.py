"""Review 15: a server whose listing does not advance, with a new cursor every page.

`RemoteBackend.list_sessions` asks the server again until its page is full. Since c71ef5f
it stops when the server hands back a cursor it gave before; a server that makes up a
new cursor every time went on for ever all the same: answering no session, the listing
hung (asking ~1,000 times a second); answering the same sessions again, a listing of
5,000 held each of them 250 times. A page that brings no session past those already
listed is now the end of it: `StorageError`, the listing does not advance. A server that
answers more sessions than asked for no longer makes a page longer than its limit.

A real gRPC server in this process (the Storage service over a memory store, its
listing changed as each case says), the remote backend a real client of it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest

import agentstore
from agentstore import StorageError
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from agentstore.server.grpc_storage import StorageServicer
from agentstore.server.service import AgentStoreService, Limits
from tests.server.test_review14_hostile_cursor import _COMMANDS as _CLI_COMMANDS
from tests.server.test_review14_hostile_cursor import _run as run_cli_against

_COUNT = itertools.count()


def _fresh_cursor() -> str:
    # Another cursor every time, each one older than the last (so it looks like progress).
    n = next(_COUNT)
    return f"2000-01-01T00:00:00+00:00|z{10**9 - n:010d}"


class _FreshEmpty(StorageServicer):
    """No session, and a new cursor to read on."""

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> Any:
        return pb.ListSessionsResponse(next_cursor=_fresh_cursor())


class _FreshSame(StorageServicer):
    """The first page whatever the cursor, and a new cursor to read on."""

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> Any:
        request.cursor = ""
        reply = await super().ListSessions(request, context)
        reply.next_cursor = _fresh_cursor()
        return reply


class _TooMany(StorageServicer):
    """Every session whatever the limit asked for (no cursor: they all fit in one reply)."""

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> Any:
        request.limit = 1000
        return await super().ListSessions(request, context)


class _SmallPages(StorageServicer):
    """Honest pages of 2 sessions at most, whatever the limit asked for."""

    async def ListSessions(self, request: pb.ListSessionsRequest, context: Any) -> Any:
        request.limit = min(request.limit, 2)
        return await super().ListSessions(request, context)


@asynccontextmanager
async def _remote(
    servicer: type[StorageServicer], data: Path | None = None, count: int = 20
) -> AsyncIterator[agentstore.Store]:
    if data is None:
        store = await agentstore.open(in_memory=True, pricing=False)
    else:
        store = await agentstore.open(data, pricing=False)
    for i in range(count):
        await store.create_session(session_id=f"s-{i:02d}")
    server = grpc.aio.server()
    pb_grpc.add_StorageServicer_to_server(servicer(AgentStoreService(store, Limits())), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with agentstore.open(f"grpc://127.0.0.1:{port}", pricing=False) as remote:
            yield remote
    finally:
        await server.stop(grace=None)
        await store.close()


@pytest.mark.parametrize("servicer", [_FreshEmpty, _FreshSame])
async def test_a_listing_that_brings_nothing_new_stops_whatever_its_cursor(
    servicer: type[StorageServicer],
) -> None:
    async with _remote(servicer) as remote:
        with anyio.fail_after(10), pytest.raises(StorageError, match="does not advance"):
            await remote.list_sessions_page(limit=5000)
        with anyio.fail_after(10), pytest.raises(StorageError, match="does not advance"):
            await remote.list_sessions(limit=5000)


async def test_a_library_walk_of_full_pages_stops_too() -> None:
    # 1,200 sessions: each page asked for (1,000 by prune, by list_sessions with an
    # offset; 5 here) is full at the server's first answer, so each call returns at
    # once; the next call, with the cursor it returned, gets the same sessions again.
    # prune went on for ever; the pages of a walk repeated.
    async with _remote(_FreshSame, count=1200) as remote:
        with anyio.fail_after(30), pytest.raises(StorageError, match="does not advance"):
            await remote.prune(older_than=timedelta(0), dry_run=True)
        page = await remote.list_sessions_page(limit=5)
        with pytest.raises(StorageError, match="does not advance"):
            await remote.list_sessions_page(limit=5, cursor=page.next_cursor)


async def test_a_page_after_the_last_may_be_empty() -> None:
    # An honest listing's cursor whose sessions were all deleted since: no session, no
    # cursor, no error.
    async with _remote(StorageServicer, count=3) as remote:
        page = await remote.list_sessions_page(limit=2)
        assert page.next_cursor is not None
        await remote.delete_session("s-00")
        rest = await remote.list_sessions_page(limit=2, cursor=page.next_cursor)
        assert (rest.sessions, rest.next_cursor) == ([], None)


async def test_a_page_is_no_longer_than_its_limit_whatever_the_server_answers() -> None:
    async with _remote(_TooMany) as remote:
        page = await remote.list_sessions_page(limit=5)
        assert [s.id for s in page.sessions] == [f"s-{i:02d}" for i in range(19, 14, -1)]
        assert page.next_cursor is not None
        rest = await remote.list_sessions_page(limit=100, cursor=page.next_cursor)
        assert [s.id for s in rest.sessions] == [f"s-{i:02d}" for i in range(14, -1, -1)]
        assert rest.next_cursor is None


async def test_an_honest_server_is_listed_whole_in_pages() -> None:
    # The check must not stop a real listing read in many of the server's pages.
    async with _remote(StorageServicer) as remote:
        sessions = await remote.list_sessions(limit=5000)
        assert len(sessions) == 20
        seen: list[str] = []
        cursor = None
        while True:
            page = await remote.list_sessions_page(limit=3, cursor=cursor)
            seen += [s.id for s in page.sessions]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [f"s-{i:02d}" for i in range(19, -1, -1)]


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_a_listing_in_small_pages_of_the_server_is_listed_whole(
    tmp_path: Path, kind: str
) -> None:
    # Over a file store with a session of the year 500 too, which it lists first (see
    # test_review15_listing_years.py): its pages are not in time order, and still whole.
    async with _remote(_SmallPages, tmp_path if kind == "file" else None) as remote:
        old = {"id": "s-old", "created_at": "0500-06-01T00:00:00+00:00"}
        await remote.import_session(old, [])
        listed = [s.id for s in await remote.list_sessions(limit=5000)]
        assert sorted(listed) == sorted([f"s-{i:02d}" for i in range(20)] + ["s-old"])
        assert listed[1:] == [f"s-{i:02d}" for i in range(19, -1, -1)] or listed[:-1] == [
            f"s-{i:02d}" for i in range(19, -1, -1)
        ]


@pytest.mark.parametrize("args", _CLI_COMMANDS)
async def test_the_cli_stops_with_one_line_on_a_listing_of_new_cursors(
    tmp_path: Path, args: list[str]
) -> None:
    code, out = await run_cli_against(_FreshSame, args, tmp_path / "dst")
    assert code == 1, out
    assert "Traceback" not in out
    assert "does not advance" in out, out


@pytest.mark.parametrize("args", _CLI_COMMANDS)
async def test_the_cli_stops_on_full_pages_of_the_same_sessions_with_new_cursors(
    tmp_path: Path, args: list[str]
) -> None:
    # 1,200 sessions: every page the CLI asks for (500 for copy, 1,000 otherwise) is full
    # on the first answer, so the remote backend does not ask again and cannot tell; the
    # CLI's walk sees the same sessions come back under a new cursor.
    code, out = await run_cli_against(_FreshSame, args, tmp_path / "dst", count=1200)
    assert code == 1, out
    assert "Traceback" not in out
    assert "does not advance" in out, out

"""The one service layer behind both doors of `agentstore serve` (HTTP/JSON and gRPC).

A door decodes its wire format into plain Python values, calls one method here, and
encodes what comes back. The rules (ids only, batch and size limits, paging, live-follow
budgets) live here and which error is which status in `agentstore.server.errors`, so the
two doors cannot disagree.

```python
service = AgentStoreService(store, Limits())
session = await service.create_session(name="worker", labels={"env": "dev"})
stored = await service.append(session.id, [{"type": "user_message", "payload": "hi"}])
```
"""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from agentstore import (
    Budget,
    Event,
    InvalidInputError,
    Session,
    SessionNotFoundError,
    State,
    Store,
)
from agentstore.backends.types import SkippedSession
from agentstore.server.errors import ServerBusyError
from agentstore.server.inputs import decode_cursor, encode_cursor, event_from_json, is_after_cursor
from agentstore.server.paging import READ_FIRST, READ_PAGE, ReadPages, follow_events, more_pages
from agentstore.server.summaries import SessionSummary, summarise
from agentstore.stats import SessionStats, collect_stats, stats_json
from agentstore.store.lifecycle_ops import check_same_session

__all__ = ["AgentStoreService", "Limits", "SessionPage", "SessionSummary"]

_LIST_PAGE = 500  # sessions per backend read while filtering the session list


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server; beyond it, a clear error and nothing written."""

    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body (HTTP) or message (gRPC) accepted, in bytes."""
    max_batch: int = 1000
    """Most events in one append."""
    max_page: int = 1000
    """Most sessions in one page of the session list."""
    max_summary_page: int = 100
    """Most sessions in one page when per-session summaries are asked for."""
    max_streams: int = 256
    """Most live follows open at once, over both doors."""
    max_streams_per_client: int = 16
    """Most live follows open at once from one client address."""
    max_stream_appends: int = 64
    """Most appends in flight on one `AppendStream` call (beyond it the call is not read)."""
    stream_queue: int = 64
    """Events queued for a follower's connection (bounded memory per follower)."""
    stream_queue_bytes: int = 4 * 1024 * 1024
    """Bytes queued for a follower's connection: fewer events when they are large (one
    is always let in)."""
    send_timeout: float = 30.0
    """Seconds a follower, or a streamed read's client, may leave what was sent unread
    before it is dropped."""
    body_timeout: float = 30.0
    """Seconds an HTTP request body may stall (no byte arriving) before it is refused."""
    heartbeat: float = 15.0
    """Seconds between keep-alive messages on an idle live follow."""


@dataclass
class SessionPage:
    """One page of the session list, newest first; `next_cursor` fetches the next page."""

    sessions: list[Session]
    next_cursor: str | None
    summaries: dict[str, SessionSummary] = field(default_factory=dict)
    skipped: list[SkippedSession] = field(default_factory=list)
    """Sessions the storage passed over while reading this page: they could not be read
    (see `agentstore.backends.base.SessionPage.skipped`)."""


class AgentStoreService:
    """Validate requests, call the `Store`, and shape results for the doors.

    The service owns none of the store's rules (sequence numbers, `expected_seq`,
    idempotent ids): it adds only what a network needs on top: limits, paging and the
    live-follow budget. It never sees a file path: sessions are named by id only.
    """

    def __init__(self, store: Store, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits if limits is not None else Limits()
        self._streams: dict[str, int] = {}
        self._stopping = anyio.Event()
        self._on_stopping: list[Callable[[], None]] = []

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once the server began to shut down (live follows end, no new ones)."""
        return self._stopping.is_set()

    def begin_shutdown(self) -> None:
        """Tell live follows to end; appends in flight finish normally."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for callback in self._on_stopping:
            callback()

    def on_stopping(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the event loop) when the server begins to shut down."""
        self._on_stopping.append(callback)

    async def wait_stopping(self) -> None:
        """Return once `begin_shutdown()` was called."""
        await self._stopping.wait()

    def health(self) -> dict[str, Any]:
        """Return the server's health: status and how many live follows are open."""
        return {
            "status": "stopping" if self.stopping else "ok",
            "streams": sum(self._streams.values()),
        }

    # --- sessions -------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        name: str | None = None,
        session_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        budget: Budget | None = None,
    ) -> Session:
        """Create a session (an id is generated unless one is given)."""
        return await self.store.create_session(
            name=name, session_id=session_id, labels=labels, budget=budget
        )

    async def get_session(self, session_id: str) -> Session:
        """Return one session by its exact id."""
        return await self.store.get_session(session_id)

    async def delete_session(self, session_id: str) -> None:
        """Delete a session and everything it holds."""
        await self.store.delete_session(session_id)

    async def list_sessions(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        labels: Mapping[str, str] | None = None,
        prefix: str | None = None,
        query: str | None = None,
        summary: bool = False,
    ) -> SessionPage:
        """Return a page of sessions, newest first, that match every filter given.

        `prefix` keeps ids starting with it; `query` keeps sessions whose name contains
        it (case-insensitive) or whose id starts with it. The cursor names the last
        session of the previous page, so sessions created meanwhile never shift a page.
        """
        cap = self.limits.max_summary_page if summary else self.limits.max_page
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= cap:
            raise InvalidInputError(f"limit must be between 1 and {cap}, not {limit!r}")
        after, resume = decode_cursor(cursor) if cursor else (None, None)
        needle = query.lower() if query else None
        # Unfiltered pages read just what they return. The cursor holds the store's own
        # cursor of the page its session came from, so the next page reads from there.
        size = _LIST_PAGE if prefix or query else min(limit + 1, _LIST_PAGE)
        found: list[Session] = []
        found_in: str | None = None  # the store cursor of the page the last one came from
        skipped: dict[SkippedSession, None] = {}  # in order, once each (several reads)
        has_more = False
        store_cursor = resume
        while not has_more:
            batch = await self.store.list_sessions_page(
                limit=size, cursor=store_cursor, labels=labels
            )
            # Those an id prefix leaves out are not this listing's to name (a text query
            # may match an unreadable session's name: those stay).
            skipped.update(
                dict.fromkeys(s for s in batch.skipped if s.session_id.startswith(prefix or ""))
            )
            for session in batch.sessions:
                if after is not None and not is_after_cursor(session, after):
                    continue  # before the cursor, or the cursor's own session
                if prefix and not session.id.startswith(prefix):
                    continue
                if needle and not (
                    session.id.startswith(query or "") or needle in (session.name or "").lower()
                ):
                    continue
                if len(found) == limit:
                    has_more = True
                    break
                found.append(session)
                found_in = store_cursor
            if batch.next_cursor is None:
                break
            store_cursor = batch.next_cursor
        next_cursor = encode_cursor(found[-1], found_in) if has_more and found else None
        page = SessionPage(found, next_cursor, skipped=list(skipped))
        if summary:
            # A session whose events cannot be read is passed over as one whose file
            # cannot be: it does not fail the page (the next cursor stays where it was).
            page.sessions, page.summaries, unread = await summarise(self.store, found)
            page.skipped += [s for s in unread if s not in skipped]
        return page

    # --- events ---------------------------------------------------------------------------

    async def append(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        expected_seq: int | None = None,
    ) -> list[Event]:
        """Append events (atomically, all or none) given as JSON objects; return them stored.

        Each object has `type` and optionally `id` (reusing a stored id writes nothing),
        `payload` and `metadata`; nothing else, so a client cannot set sequence numbers or
        timestamps. Every event is checked before anything is written.
        """
        if not isinstance(events, Sequence) or isinstance(events, str | bytes):
            raise InvalidInputError("events must be a list of event objects")
        self.check_batch_size(len(events))
        batch = [event_from_json(raw, index) for index, raw in enumerate(events)]
        return await self.append_events(session_id, batch, expected_seq=expected_seq)

    async def append_events(
        self, session_id: str, batch: list[Event], *, expected_seq: int | None = None
    ) -> list[Event]:
        """Append events already built from a client's fields (`inputs.event_from_fields`),
        atomically; return them stored. The gRPC door's path: no JSON objects between.

        The caller checked the batch's size (`check_batch_size`) before it decoded them, as
        `append` does, so that a batch too large is refused before any event is looked at.
        """
        if len(batch) == 1:
            return [await self.store.append(session_id, batch[0], expected_seq=expected_seq)]
        return await self.store.append_many(session_id, batch, expected_seq=expected_seq)

    def check_batch_size(self, count: int) -> None:
        """Refuse an append of no event or of more than `Limits.max_batch` (before any of
        its events is decoded)."""
        if not count:
            raise InvalidInputError("an append needs at least one event")
        if count > self.limits.max_batch:
            raise InvalidInputError(
                f"too many events in one append ({count}); "
                f"the limit is {self.limits.max_batch}: split the batch"
            )

    async def read_events(
        self,
        session_id: str,
        *,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        from_seq: int | None = None,
        to_seq: int | None = None,
        limit: int | None = None,
        session: Session | None = None,
    ) -> AsyncIterator[list[Event]]:
        """Yield the matching events in pages, so a long session never sits in memory whole.

        The first page is read before this returns, so a bad filter or an unknown session
        raises here, before a door has started its response. Each page is a read of its
        own: after each, the session must still be `session` (default: the one found at
        the start), or `SessionNotFoundError` is raised: one deleted and made again under
        its id meanwhile would give the later pages of the other.
        """
        if session is None:
            session = await self.store.get_session(session_id)
        type_list = list(types) if types is not None else None
        size = READ_PAGE if limit is None else min(limit, READ_PAGE)
        asked = min(size, READ_FIRST)
        first = await self.store.replay(
            session_id,
            types=type_list,
            since=since,
            until=until,
            from_seq=from_seq,
            to_seq=to_seq,
            limit=asked,
        )
        await check_same_session(self.store.get_session, session)
        pages = ReadPages(session, type_list, since, until, to_seq, limit, size)
        return more_pages(self.store, pages, first, asked)

    async def get_state(self, session_id: str, *, at_seq: int | None = None) -> State:
        """Return the session's state, or as of event `at_seq`."""
        return await self.store.get_state(session_id, at_seq=at_seq)

    async def fork(
        self,
        session_id: str,
        *,
        at_seq: int,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Session:
        """Copy the first `at_seq` events of a session into a new session."""
        return await self.store.fork(session_id, at_seq=at_seq, name=name, labels=labels)

    async def export(self, session_id: str) -> tuple[Session, AsyncIterator[list[Event]]]:
        """Return a session and its events in pages: what `agentstore export` writes."""
        info = await self.store.get_session(session_id)
        pages = await self.read_events(session_id, to_seq=info.event_count or None, session=info)
        return info, pages

    async def stats(self, session_id: str, *, at_seq: int | None = None) -> dict[str, Any]:
        """Return the `agentstore stats --format json` object of a session."""
        info = await self.store.get_session(session_id)
        state = await self.store.get_state(session_id, at_seq=at_seq)
        figures = SessionStats()
        if at_seq != 0:
            pages = await self.read_events(session_id, to_seq=at_seq)
            figures = await collect_stats(_flatten(pages))
        return stats_json(info, state, figures, at_seq)

    # --- live follow ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def follow(
        self,
        session_id: str,
        *,
        from_seq: int = 0,
        client: str = "?",
        created_at: datetime | None = None,
    ) -> AsyncIterator[AsyncIterator[Event]]:
        """Hold one live-follow slot and yield the session's events from `from_seq` on.

        Raises `ServerBusyError` past the stream limits, and the store's errors for an
        unknown session (or, given `created_at`, another session made under its id since
        the client read it), before anything is yielded. The iterator ends when the server
        shuts down.
        """
        if self.stopping:
            raise ServerBusyError("the server is shutting down; reconnect to another one")
        if sum(self._streams.values()) >= self.limits.max_streams:
            raise ServerBusyError(
                f"too many live follows open ({self.limits.max_streams}); retry later"
            )
        if self._streams.get(client, 0) >= self.limits.max_streams_per_client:
            raise ServerBusyError(
                f"this client has {self.limits.max_streams_per_client} live follows open; "
                "close one first"
            )
        session = await self.store.get_session(session_id)  # an unknown session fails here
        if created_at is not None and session.created_at != created_at:
            raise SessionNotFoundError(session_id)  # the one the client knew is gone
        self._streams[client] = self._streams.get(client, 0) + 1
        events = follow_events(self.store, session, from_seq)
        try:
            yield events
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()
            left = self._streams[client] - 1
            if left:
                self._streams[client] = left
            else:
                del self._streams[client]


async def _flatten(pages: AsyncIterator[list[Event]]) -> AsyncIterator[Event]:
    async for page in pages:
        for event in page:
            yield event

"""How the service reads a session a page at a time: long reads and live follows.

Each page is a read of its own, so two rules hold for every page after the first:

- the session must still be the one the read began with (its creation time, and the last
  event sent read again, since an import keeps its export's time): one deleted and made
  again under its id meanwhile would give the later pages of the other;
- a page is held whole (and encoded whole by a door), so its size follows the events' own
  bytes, from a small first page: 500 events of 3 MB were a page of 1.5 GB.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from agentstore import Event, Session, Store
from agentstore.store.lifecycle_ops import check_same_event, check_same_session, replay_reader

__all__ = ["READ_FIRST", "READ_PAGE", "ReadPages", "follow_events", "more_pages"]

READ_PAGE = 500  # events per backend read while streaming a long replay, at most
READ_FIRST = 8  # events in its first read (their size sets the next reads')
_READ_BYTES = 4 * 1024 * 1024  # bytes of events a read's page aims at
_FOLLOW_PAGE = 64  # events per read while a live follow catches up, at most
_FOLLOW_FIRST = 1  # events in its first read (their size sets the next reads')
_FOLLOW_BYTES = 1024 * 1024  # bytes of events a follow's read aims at


@dataclass(frozen=True)
class ReadPages:
    """What the later pages of a read ask for (see `AgentStoreService.read_events`)."""

    session: Session
    types: list[str] | None
    since: datetime | None
    until: datetime | None
    to_seq: int | None
    limit: int | None
    size: int


def _next_size(page: list[Event], most: int, aim: int) -> int:
    held = sum(len(event.to_json()) for event in page)
    return max(1, min(most, aim * len(page) // max(held, 1)))


async def more_pages(
    store: Store, how: ReadPages, page: list[Event], asked: int
) -> AsyncIterator[list[Event]]:
    """Yield `page` (the first, `asked` events asked for) and the read's later pages."""
    left = how.limit
    while page:
        size = _next_size(page, how.size, _READ_BYTES)
        yield page
        if left is not None:
            left -= len(page)
            if left <= 0:
                return
        if len(page) < asked:
            return
        asked = size if left is None else min(left, size)
        last = page[-1]
        page = await store.replay(
            how.session.id,
            types=how.types,
            since=how.since,
            until=how.until,
            from_seq=last.sequence_number + 1,
            to_seq=how.to_seq,
            limit=asked,
        )
        # The same session: its creation time, and (an import keeps its export's time)
        # the last event sent, read again.
        await check_same_session(store.get_session, how.session)
        await check_same_event(replay_reader(store.replay, how.session.id), how.session.id, last)


async def follow_events(
    store: Store, session: Session, from_seq: int
) -> AsyncGenerator[Event, None]:
    """Yield `session`'s events from `from_seq` on, then each one appended, for good."""
    # A follower holds at most one small page while its client is slow: catch up a page at
    # a time, and use the store's stream only to wait for the next event (it wakes on an
    # append, no polling), letting go of its page before yielding.
    sid = session.id
    next_seq = max(from_seq, 1)
    size = _FOLLOW_FIRST
    while True:
        page = await store.replay(sid, from_seq=next_seq, limit=size)
        full = len(page) == size
        if page:
            await check_same_session(store.get_session, session)
            size = _next_size(page, _FOLLOW_PAGE, _FOLLOW_BYTES)
        for event in page:
            yield event
        if page:
            next_seq = page[-1].sequence_number + 1
        if full:
            continue
        live = store.stream(sid, from_seq=next_seq, follow=True)
        first: Event | None = None
        async with contextlib.aclosing(live):  # type: ignore[type-var]
            async for event in live:
                first = event
                break
        if first is None:
            return  # the store was closed
        await check_same_session(store.get_session, session)
        yield first
        next_seq = first.sequence_number + 1

"""Read a session's events page by page, so that output starts at once and memory stays flat."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

from agentstore import Event, Store
from agentstore._gc import gc_paused  # counted: safe beside the store's own pauses
from agentstore.events import check_event_type
from agentstore_cli.common import UsageError

__all__ = ["EventQuery", "follow_events", "gc_paused", "iter_events", "iter_pages", "parse_types"]

PAGE = 1000


def parse_types(values: list[str] | None) -> frozenset[str] | None:
    """Parse `--type a,b --type c` into a set of type names; `UsageError` on a bad name."""
    if not values:
        return None
    names: set[str] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if not name:
                continue
            try:
                names.add(check_event_type(name))
            except ValueError:
                raise UsageError(
                    f"invalid --type {name!r}: event types are lower-case names such as "
                    "tool_called, llm_response, error or a custom type like cache_hit"
                ) from None
    if not names:
        raise UsageError("--type needs at least one event type, e.g. --type tool_called,error")
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events to show; every bound is inclusive, like `Store.replay`."""

    types: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    limit: int | None = None

    def matches(self, event: Event) -> bool:
        """Tell whether `event` passes the type, time and sequence filters."""
        seq = event.sequence_number
        if self.from_seq is not None and seq < self.from_seq:
            return False
        if self.to_seq is not None and seq > self.to_seq:
            return False
        if self.types is not None and event.type not in self.types:
            return False
        ts = event.timestamp
        if ts is not None and self.since is not None and ts < self.since:
            return False
        return not (ts is not None and self.until is not None and ts > self.until)

    def past_end(self, event: Event) -> bool:
        """Tell whether no later event can match (sequence or time bound passed)."""
        if self.to_seq is not None and event.sequence_number >= self.to_seq:
            return True
        ts = event.timestamp
        return ts is not None and self.until is not None and ts >= self.until


async def iter_pages(
    store: Store, session_id: str, query: EventQuery, *, first_page: int = PAGE
) -> AsyncGenerator[list[Event], None]:
    """Yield the events that match `query` as lists of at most `PAGE` events.

    Filters go down to the store, so a `--to-seq 10` or `--limit 5` on a huge session
    reads only the start of its log. The first page holds at most `first_page` events:
    a small one puts the first rows on screen before a whole page is read. A consumer
    that handles a page at a time pays one async step per page, not one per event.
    """
    next_seq = query.from_seq or 1
    remaining = query.limit
    size = min(first_page, PAGE)
    while remaining is None or remaining > 0:
        if remaining is not None:
            size = min(size, remaining)
        with gc_paused():
            page = await store.replay(
                session_id,
                types=query.types,
                since=query.since,
                until=query.until,
                from_seq=next_seq,
                to_seq=query.to_seq,
                limit=size,
            )
        count = len(page)
        if not count:
            return
        next_seq = page[-1].sequence_number + 1
        # The page is let go before the next one is read, so that its memory is reused
        # for the next (the consumer drops it as soon as it has written its rows).
        yield page
        del page
        if count < size:
            return
        if remaining is not None:
            remaining -= count
        size = PAGE


async def iter_events(
    store: Store, session_id: str, query: EventQuery
) -> AsyncGenerator[Event, None]:
    """Yield the events that match `query`, reading `PAGE` events at a time."""
    async with contextlib.aclosing(iter_pages(store, session_id, query)) as pages:
        async for page in pages:
            for event in page:
                yield event
            del page  # not held while the next page is read (see iter_pages)


async def follow_events(
    store: Store, session_id: str, query: EventQuery
) -> AsyncGenerator[Event, None]:
    """Yield matching events, then keep waiting for new ones (until cancelled).

    Stops by itself once `--to-seq` or `--until` is passed, or `--limit` is reached.
    """
    count = 0
    async for event in store.stream(session_id, from_seq=query.from_seq or 1, follow=True):
        if query.matches(event):
            yield event
            count += 1
            if query.limit is not None and count >= query.limit:
                return
        if query.past_end(event):
            return

"""The reading half of `SyncStore` (a mixin: `SyncStore` provides the attributes below)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from agentstore.errors import StoreClosedError
from agentstore.events import Event, EventType
from agentstore.state import State
from agentstore.store import Store
from agentstore.verify import VerifyReport

__all__ = ["SyncReads"]

P = ParamSpec("P")
T = TypeVar("T")


class SyncReads:
    """States, events, replays, streams and verification, blocking (see `SyncStore`)."""

    _store: Store
    _closed: bool

    def _call(self, func: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        raise NotImplementedError

    def get_state(self, session_id: str, *, at_seq: int | None = None) -> State:
        """Return the session's state (see `Store.get_state`)."""
        return self._call(self._store.get_state, session_id, at_seq=at_seq)

    def get_events(self, session_id: str, from_seq: int = 0) -> list[Event]:
        """Return the session's events from `from_seq` on (see `Store.get_events`)."""
        return self._call(self._store.get_events, session_id, from_seq)

    def replay(
        self,
        session_id: str,
        *,
        types: Iterable[EventType | str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        from_seq: int | None = None,
        to_seq: int | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Return the events that match every filter (see `Store.replay`)."""
        return self._call(
            self._store.replay,
            session_id,
            # Read here, on the caller's thread (a generator); the store refuses what is
            # no type nor iterable of them.
            types=list(types)
            if isinstance(types, Iterable) and not isinstance(types, str)
            else types,
            since=since,
            until=until,
            from_seq=from_seq,
            to_seq=to_seq,
            limit=limit,
        )

    def stream(
        self, session_id: str, *, from_seq: int = 0, follow: bool = False
    ) -> Iterator[Event]:
        """Yield the session's events in order (see `Store.stream`).

        With `follow=True` it blocks waiting for new events until you stop iterating
        or the store is closed.
        """
        agen = self._call(_start_stream, self._store, session_id, from_seq, follow)
        try:
            while True:
                try:
                    event = self._call(agen.__anext__)
                except (StopAsyncIteration, StoreClosedError):
                    return
                yield event
        finally:
            if not self._closed:
                with contextlib.suppress(RuntimeError, StoreClosedError):
                    self._call(agen.aclose)

    def verify(self, session_id: str | None = None, *, repair: bool = False) -> VerifyReport:
        """Check every log (or one session's) and report problems (see `Store.verify`)."""
        return self._call(self._store.verify, session_id, repair=repair)


async def _start_stream(store: Store, session_id: str, from_seq: int, follow: bool) -> Any:
    # Created in the loop thread, so the generator's first checks run where it lives.
    return store.stream(session_id, from_seq=from_seq, follow=follow)

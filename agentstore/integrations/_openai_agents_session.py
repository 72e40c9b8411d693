"""`AgentStoreSession`: the OpenAI Agents SDK's `Session` protocol (a conversation's items)
on an agentstore session, kept append-only with pop and clear markers.

Framework-free: the SDK finds the protocol's methods by name, so this module imports no
part of it (`agentstore.integrations.openai_agents` checks that the SDK is installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentstore.errors import ConcurrencyError, InvalidInputError, SessionNotFoundError
from agentstore.events import new_event
from agentstore.integrations._appender import SessionAppender
from agentstore.tracking import to_json_value

if TYPE_CHECKING:
    from agentstore import Store

__all__ = ["CLEAR_TYPE", "ITEM_TYPE", "LABELS", "POP_TYPE", "AgentStoreSession"]

ITEM_TYPE = "openai_agents_item"
"""The event type of one conversation item (its payload is the item)."""
POP_TYPE = "openai_agents_pop"
"""The event type that removes one item: `{"item_seq": <sequence number of the item>}`."""
CLEAR_TYPE = "openai_agents_clear"
"""The event type that removes every item before it."""

LABELS = {"framework": "openai-agents"}
"""The labels of a session this integration creates (the hooks' and the items')."""


class AgentStoreSession:
    """The SDK's `Session` protocol on an agentstore session: the conversation's items.

    ```python
    session = AgentStoreSession(store, "support-42")
    await Runner.run(agent, "Hello", session=session)
    await Runner.run(agent, "And tomorrow?", session=session)  # resumes from the items
    ```

    Items are `openai_agents_item` events; `pop_item()` and `clear_session()` append
    markers that hide items, never rewrite the log. The agentstore session is created on
    first use. `get_items()` reads only the events appended since its last call.
    """

    session_settings: Any = None
    """The SDK's per-session settings (`SessionSettings`); None uses the run's."""

    def __init__(self, store: Store, session_id: str) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError("AgentStoreSession needs a session id (a non-empty string)")
        self.store = store
        """The store holding the items."""
        self._appender = SessionAppender(store, LABELS)
        self.session_id = session_id
        """The agentstore session id (also the SDK's session id)."""
        self._items: list[tuple[int, Any]] = []  # (sequence number, item), in order
        self._seen = 0  # the last sequence number folded into _items
        self._seen_id: str | None = None  # and the id of that event

    async def _catch_up(self) -> None:
        """Fold the events appended since the last read into the item view."""
        seen, seen_id = self._seen, self._seen_id
        try:
            # From the last event folded (again): if it is gone or another, the session was
            # deleted (and perhaps made again) since, and what was folded is no more.
            events = await self.store.get_events(self.session_id, from_seq=max(seen, 1))
            if seen and (not events or events[0].id != seen_id):
                self._items, self._seen, self._seen_id = [], 0, None
                events = await self.store.get_events(self.session_id)
        except SessionNotFoundError:
            self._items, self._seen, self._seen_id = [], 0, None
            return
        for event in events:
            if event.sequence_number <= self._seen:
                continue  # folded by a concurrent read of this object meanwhile
            self._seen, self._seen_id = event.sequence_number, event.id
            if event.type == ITEM_TYPE:
                self._items.append((event.sequence_number, event.payload))
            elif event.type == POP_TYPE:
                target = event.payload.get("item_seq") if isinstance(event.payload, dict) else None
                self._items = [(s, it) for s, it in self._items if s != target]
            elif event.type == CLEAR_TYPE:
                self._items = []

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """Return the items, oldest first (with `limit`: the latest `limit` of them)."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative integer, not {limit!r}")
        await self._catch_up()
        items = [item for _, item in self._items]
        if limit is not None:
            items = items[-limit:] if limit else []
        return items

    async def add_items(self, items: list[Any]) -> None:
        """Append the items, all or nothing, as `openai_agents_item` events."""
        if not items:
            return
        events = [new_event(ITEM_TYPE, _item_payload(item)) for item in items]
        await self._appender.append_many(self.session_id, events)

    async def pop_item(self) -> Any | None:
        """Remove and return the latest item (None if there is none): appends a marker."""
        while True:
            await self._catch_up()
            if not self._items:
                return None
            seq, item = self._items[-1]
            marker = new_event(POP_TYPE, {"item_seq": seq})
            try:
                # Only if nothing was appended since we looked: else another writer may
                # have popped or added, and we look again.
                await self.store.append(self.session_id, marker, expected_seq=self._seen)
            except ConcurrencyError:
                continue
            return item

    async def clear_session(self) -> None:
        """Remove every item: appends an `openai_agents_clear` marker."""
        await self._catch_up()
        if self._seen == 0:
            return  # nothing stored (perhaps no session yet): nothing to clear
        await self.store.append(self.session_id, new_event(CLEAR_TYPE, {}))


def _item_payload(item: Any) -> Any:
    if isinstance(item, Mapping):
        return to_json_value(dict(item))
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        return to_json_value(dump(exclude_unset=True))
    return to_json_value(item)

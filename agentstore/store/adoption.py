"""Adoption: a snapshot folded from the log becomes the cache, with what was appended since.

When a snapshot is due and nothing of the session is cached (a store that only writes),
`StateKeeper.save_snapshot` folds the state from the log, after the append returned. The
appends this store makes meanwhile are kept here (private copies), so that the folded
state, brought up to date with them, can become the cached state: the next snapshot is
then taken from the cache instead of the log being read back at every snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentstore.backends.base import AppendResult, PendingEvent
from agentstore.events import Event
from agentstore.store.validate import private_copy

__all__ = ["ADOPT_MAX", "Adoption"]

ADOPT_MAX = 1000
"""The most events appended meanwhile that a snapshot's fold takes in to become the cache."""


class Adoption:
    """A snapshot being folded from the log, and the events this store appended since."""

    __slots__ = ("base", "events", "head")

    def __init__(self, base: int) -> None:
        self.base = base
        self.head = base
        """The session's last sequence number as this store appended it; -1: given up."""
        self.events: list[Event] = []

    def take(self, result: AppendResult, batch: Sequence[PendingEvent]) -> None:
        """Keep private copies of an append's new events (the caller may change its own)."""
        if self.head < 0:
            return
        if result.previous_seq != self.head or len(self.events) + result.written > ADOPT_MAX:
            self.head, self.events = -1, []  # another writer appended, or too much: give up
            return
        self.head = result.last_seq
        taken = result.previous_seq
        for event, pending in zip(result.events, batch, strict=True):
            # A batch naming one id twice gives its event twice: the second is no new one.
            if event.sequence_number > taken:
                taken = event.sequence_number
                self.events.append(private_copy(event, pending.payload_json))

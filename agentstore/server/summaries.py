"""The figures of each session on a page of the session list (`summary=1`: the web UI's table).

A summary folds the session's events (its state). One session whose events cannot be read
(a log line changed after it was written) must not fail the page, which would hide every
other session: like a session file the listing cannot read, it is left out and named in the
page's `skipped`. A session deleted between the listing and its summary is left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from agentstore import Session, SessionNotFoundError, State, Store
from agentstore.backends.types import SkippedSession
from agentstore.errors import StorageError, StorageUnavailableError

__all__ = ["SessionSummary", "summarise"]


@dataclass
class SessionSummary:
    """Per-session figures for a session list (the web UI's table)."""

    events: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    errors: int
    open_calls: int
    last_activity: datetime | None


async def summarise(
    store: Store, sessions: list[Session]
) -> tuple[list[Session], dict[str, SessionSummary], list[SkippedSession]]:
    """The sessions that could be summarised, their summaries, and those passed over."""
    kept: list[Session] = []
    summaries: dict[str, SessionSummary] = {}
    skipped: list[SkippedSession] = []
    for session in sessions:
        try:
            state = await store.get_state(session.id)
        except SessionNotFoundError:
            continue  # deleted since it was listed
        except StorageUnavailableError:
            raise  # the store's trouble, not this session's: every other would fail too
        except StorageError as exc:
            skipped.append(SkippedSession(session.id, _relative(store, str(exc))))
            continue
        kept.append(session)
        summaries[session.id] = _summary(session, state)
    return kept, summaries, skipped


def _relative(store: Store, what: str) -> str:
    """`what` with the data directory's path taken out of the files it names (a server
    names no path of its machine: `SkippedSession.reason`)."""
    root = getattr(store.backend, "root", None)
    if root is None or str(root) == ".":
        return what
    return what.replace(f"{root}{os.sep}", "")


def _summary(session: Session, state: State) -> SessionSummary:
    return SessionSummary(
        events=state.event_count,
        tokens_in=state.tokens.input,
        tokens_out=state.tokens.output,
        cost_usd=state.tokens.cost_usd,
        errors=state.errors,
        open_calls=len(state.open_calls),
        last_activity=state.last_event_at or session.updated_at,
    )

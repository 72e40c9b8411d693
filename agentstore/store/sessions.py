"""The session half of `Store`: create, read, change, list, find and delete sessions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agentstore.backends.base import UNSET, Backend, SessionChanges, SessionPage
from agentstore.backends.base import SessionQuery as _Query
from agentstore.errors import AmbiguousSessionError, InvalidInputError, SessionNotFoundError
from agentstore.pricing import Pricer, warn_if_cost_budget_unpriced
from agentstore.session import Session, validate_session_id
from agentstore.state import Budget
from agentstore.store.budgets import BudgetBook
from agentstore.store.snapshots import SnapshotWriter
from agentstore.store.states import StateKeeper
from agentstore.store.validate import check_budget, check_count, check_labels, check_text

__all__ = ["StoreSessions"]

_PREFIX_CANDIDATES = 11


class StoreSessions:
    """The session methods of `Store` (a mixin: `Store` provides the attributes below)."""

    _backend: Backend
    _states: StateKeeper
    _snapshots: SnapshotWriter
    _budgets: BudgetBook
    _last_created: datetime | None
    _pricer: Pricer | None

    def _check_open(self) -> None:
        raise NotImplementedError

    # --- sessions -------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        name: str | None = None,
        session_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        budget: Budget | None = None,
    ) -> Session:
        """Create a session (an id is generated unless `session_id` is given).

        With a `budget`, appending an `llm_request` to the session once it is at or over
        the budget raises `BudgetExceededError`. Raises `SessionExistsError` if
        `session_id` is taken.
        """
        self._check_open()
        sid = validate_session_id(session_id) if session_id is not None else str(uuid.uuid4())
        budget = check_budget(budget)
        warn_if_cost_budget_unpriced(budget, self._pricer)
        session = self._new_session(sid, name=name, labels=labels, budget=budget)
        await self._backend.create_session(session)
        self._states.created(sid, session.created_at, budget)
        return session

    def _new_session(
        self,
        session_id: str,
        *,
        name: str | None,
        labels: Mapping[str, str] | None,
        **extra: Any,
    ) -> Session:
        if name is not None and not isinstance(name, str):
            raise InvalidInputError("name must be a string")
        if name is not None:
            check_text("name", name)
        clean_labels = check_labels(labels)
        now = datetime.now(UTC)
        # Strictly increasing creation times keep "newest first" exact within a process.
        if self._last_created is not None and now <= self._last_created:
            now = self._last_created + timedelta(microseconds=1)
        self._last_created = now
        return Session(
            id=session_id,
            name=name,
            created_at=now,
            updated_at=now,
            event_count=0,
            labels=clean_labels,
            **extra,
        )

    async def get_session(self, session_id: str) -> Session:
        """Return a session. Raises `SessionNotFoundError` if there is none."""
        self._check_open()
        return await self._backend.get_session(validate_session_id(session_id))

    async def update_session(
        self,
        session_id: str,
        *,
        name: str | None = UNSET,
        labels: Mapping[str, str] = UNSET,
        budget: Budget | None = UNSET,
    ) -> Session:
        """Rename, relabel or re-budget a session; what is not given stays as it is.

        `labels` replaces the labels whole; `budget=None` removes the budget. Returns the
        session as it now is.
        """
        self._check_open()
        sid = validate_session_id(session_id)
        if name is not UNSET and name is not None and not isinstance(name, str):
            raise InvalidInputError("name must be a string or None")
        if isinstance(name, str):
            check_text("name", name)
        if budget is not UNSET:
            budget = check_budget(budget)
            warn_if_cost_budget_unpriced(budget, self._pricer)
        changes = SessionChanges(name=name, labels=UNSET, budget=budget)
        if labels is not UNSET:
            changes = replace(changes, labels=check_labels(labels))
        async with self._states.lock(sid):
            session = await self._backend.update_session(sid, changes)
            self._budgets.forget(sid)
            self._states.forget(sid)  # the state carries the budget
        return session

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> list[Session]:
        """Return sessions newest first; `labels` filters (all must match) before paging.

        For paging through many sessions while others come and go, `list_sessions_page`
        (a cursor) never repeats or skips one. A session that cannot be read (a damaged
        session file) is left out, and only logged: `list_sessions_page` names it in
        `SessionPage.skipped`.
        """
        self._check_open()
        check_count("limit", limit)
        check_count("offset", offset)
        clean = check_labels(labels) or None
        out: list[Session] = []
        cursor: str | None = None
        skip = offset
        while len(out) < limit:
            want = min(skip + limit - len(out), 1000)
            page = await self._backend.list_sessions(_Query(want, cursor, clean))
            taken = page.sessions[skip:]
            skip = max(skip - len(page.sessions), 0)
            out.extend(taken[: limit - len(out)])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        return out

    async def list_sessions_page(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """Return one page of sessions, newest first, and the cursor of the next page.

        ```python
        page = await store.list_sessions_page(limit=50)
        while page.next_cursor:
            page = await store.list_sessions_page(limit=50, cursor=page.next_cursor)
        ```

        A session that cannot be read (a damaged session file) is left out of the page and
        named in `page.skipped`, with why: one bad session never hides the others. One
        whose place in the order is not known is named on every page.
        """
        self._check_open()
        check_count("limit", limit)
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidInputError("cursor must be a string from a previous page")
        clean = check_labels(labels) or None
        return await self._backend.list_sessions(_Query(limit, cursor, clean))

    async def delete_session(self, session_id: str) -> None:
        """Delete a session, its events and its snapshots, for good."""
        self._check_open()
        await self._delete(validate_session_id(session_id), None)

    async def _delete(self, sid: str, expected_seq: int | None) -> None:
        if self._snapshots.busy:  # its snapshot write in flight ends first, not after
            await self._snapshots.settled(sid)
        async with self._states.lock(sid):
            self._states.forget(sid)
            self._budgets.forget(sid)
            await self._backend.delete_session(sid, expected_seq=expected_seq)

    async def resolve_session_id(self, prefix: str) -> str:
        """Return the id of the one session whose id is `prefix` or starts with it.

        Raises `SessionNotFoundError` if none matches and `AmbiguousSessionError` (with
        the `candidates`) if several do, like git's abbreviated commit ids.
        """
        self._check_open()
        if not isinstance(prefix, str) or not prefix:
            raise InvalidInputError("a session id or prefix must be a non-empty string")
        validate_session_id(prefix.rstrip(".") or "x")
        candidates = await self._backend.find_session_ids(prefix, _PREFIX_CANDIDATES)
        if prefix in candidates:
            return prefix
        if not candidates:
            raise SessionNotFoundError(prefix)
        if len(candidates) > 1:
            raise AmbiguousSessionError(prefix, candidates)
        return candidates[0]

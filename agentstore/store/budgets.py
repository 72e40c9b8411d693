"""Each session's budget, remembered so that a paid call does not re-read the session."""

from __future__ import annotations

from collections import OrderedDict

from agentstore.backends.base import Backend
from agentstore.state import Budget

__all__ = ["BudgetBook"]


class BudgetBook:
    """A bounded memory of sessions' budgets (None: the session has none)."""

    def __init__(self, backend: Backend, size: int) -> None:
        self._backend = backend
        self._size = max(size, 1)
        self._budgets: OrderedDict[str, Budget | None] = OrderedDict()

    async def get(self, session_id: str) -> Budget | None:
        """Return the session's budget, reading the session only the first time."""
        if session_id in self._budgets:
            return self._budgets[session_id]
        return self.remember(session_id, (await self._backend.get_session(session_id)).budget)

    def remember(self, session_id: str, budget: Budget | None) -> Budget | None:
        """Note a budget just read or set; return it."""
        self._budgets[session_id] = budget
        while len(self._budgets) > self._size:
            self._budgets.popitem(last=False)
        return budget

    def forget(self, session_id: str) -> None:
        """Drop what is known of a session (deleted, or changed by `update_session`)."""
        self._budgets.pop(session_id, None)

    def clear(self) -> None:
        """Forget every session."""
        self._budgets.clear()

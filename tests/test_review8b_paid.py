"""Review 8b: a paid append (an llm_request) in a session with a budget read the session's
head twice: d22b3f1's read (which session is this: `StateKeeper.observe`) and again in
`Writer._append_within_budget` (the state at the head, to check the budget). On PostgreSQL
or the remote backend each read is a round trip (a query, a gRPC call), on the path of
every LLM call of a budgeted agent. The backend here is the real one; it only counts."""

from __future__ import annotations

from datetime import datetime

from agentstore import Budget, EventType, Store, new_event
from agentstore.backends.memory import MemoryBackend
from agentstore.testing.conformance.builders import llm


class _CountingHeads(MemoryBackend):
    """The memory backend, counting head reads (`last_seq` is one too)."""

    heads = 0

    async def head(self, session_id: str) -> tuple[int, datetime | None]:
        self.heads += 1
        return await super().head(session_id)

    async def last_seq(self, session_id: str) -> int:
        self.heads += 1
        return await super().last_seq(session_id)


async def test_a_paid_append_with_a_budget_reads_the_head_once() -> None:
    backend = _CountingHeads()
    async with await Store(backend) as store:
        session = await store.create_session(budget=Budget(max_tokens=10_000))
        await store.append(session.id, new_event(EventType.LLM_REQUEST, {"n": 0}))
        await store.append(session.id, llm(tokens_in=10, tokens_out=0, cost=0))
        await store.get_state(session.id)  # cached, at its head
        backend.heads = 0
        await store.append(session.id, new_event(EventType.LLM_REQUEST, {"n": 1}))
        assert backend.heads == 1

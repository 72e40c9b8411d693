"""A budget's limits are numbers, checked when built, assigned and handed to the store.

pydantic's lax mode took `max_cost_usd=True` for a one-dollar budget and `"5"` for 5; an
assignment was not checked at all, and the store kept the caller's object: a limit made
bad after `Budget(...)` (or one built with `model_construct`) was stored as it was, and a
session file holding `"max_tokens": "x"` cannot be read back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import Budget, BudgetExceededError, EventType, InvalidInputError, new_event
from agentstore.metadata import Metadata


@pytest.mark.parametrize(
    "limits",
    [{"max_cost_usd": True}, {"max_tokens": True}, {"max_tokens": "5"}, {"max_tokens": -1}],
)
def test_a_limit_that_is_no_number_of_at_least_zero_is_refused(limits: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match="invalid budget"):
        Budget(**limits)  # type: ignore[arg-type]
    budget = Budget(max_tokens=10)
    name, value = next(iter(limits.items()))
    with pytest.raises(InvalidInputError, match="invalid budget"):
        setattr(budget, name, value)
    assert budget == Budget(max_tokens=10)


async def test_a_budget_made_bad_behind_validation_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    changed = Budget(max_tokens=10)
    changed.__dict__["max_tokens"] = "x"
    constructed = Budget.model_construct(max_cost_usd=-1.0)
    async with agentstore.open(tmp_path, pricing=False) as store:
        for budget in (changed, constructed):
            with pytest.raises(InvalidInputError, match="invalid budget"):
                await store.create_session(session_id="s", budget=budget)
        assert await store.list_sessions() == []
        session = await store.create_session(session_id="s")
        with pytest.raises(InvalidInputError):
            await store.update_session(session.id, budget=changed)
        with pytest.raises(InvalidInputError):
            await store.fork(session.id, at_seq=0, budget=constructed)
    async with agentstore.open(tmp_path, pricing=False) as store:
        assert (await store.get_session("s")).budget is None


async def test_the_store_keeps_the_budget_it_was_given_not_the_callers_object(
    tmp_path: Path,
) -> None:
    budget = Budget(max_tokens=100)
    async with agentstore.open(tmp_path, pricing=False) as store:
        sid = (await store.create_session(budget=budget)).id
        budget.max_tokens = 1  # the caller's object, changed after the session was made
        spent = Metadata(tokens_in=5, tokens_out=5)
        await store.append(sid, new_event(EventType.LLM_RESPONSE, {}, spent))
        await store.append(sid, new_event(EventType.LLM_REQUEST, {}))  # 10 of 100: allowed
        assert (await store.get_session(sid)).budget == Budget(max_tokens=100)
        budget.max_tokens = 100
        small = (await store.create_session(budget=Budget(max_tokens=5))).id
        await store.append(small, new_event(EventType.LLM_RESPONSE, {}, spent))
        with pytest.raises(BudgetExceededError):
            await store.append(small, new_event(EventType.LLM_REQUEST, {}))

"""An exported session changed past validation is refused by `import_session`, whole.

pydantic takes a model instance as it is: a `Session` whose labels dict was changed in
place, or whose budget was assigned or built with `model_construct`, was written as it
was; the session file could not be read back (`CorruptLogError`), the import failed
reading it, and the broken session stayed behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import Budget, InvalidInputError, Session, SessionNotFoundError


def _bad_label(session: Session) -> Any:
    session.labels["team"] = 5  # type: ignore[assignment]
    return session


def _constructed_budget(session: Session) -> Any:
    session.budget = Budget.model_construct(max_tokens="x")  # type: ignore[arg-type]
    return session


def _budget_in_a_mapping(session: Session) -> Any:
    return {**session.model_dump(), "budget": Budget.model_construct(max_cost_usd=-1.0)}


@pytest.mark.parametrize("spoil", [_bad_label, _constructed_budget, _budget_in_a_mapping])
async def test_a_spoiled_export_is_refused_and_leaves_nothing(
    tmp_path: Path, spoil: Callable[[Session], Any]
) -> None:
    async with agentstore.open(tmp_path) as store:
        made = await store.create_session(labels={"team": "a"}, budget=Budget(max_tokens=9))
        exported = await store.get_session(made.id)
        await store.delete_session(made.id)
        with pytest.raises(InvalidInputError, match="not a valid session"):
            await store.import_session(spoil(exported), [])
        assert await store.list_sessions() == []
        with pytest.raises(SessionNotFoundError):
            await store.get_session(made.id)
    async with agentstore.open(tmp_path) as store:  # and no file another store trips on
        assert await store.list_sessions() == []


async def test_an_unchanged_export_imports_with_its_labels_and_budget(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        made = await store.create_session(labels={"team": "a"}, budget=Budget(max_tokens=9))
        exported = await store.get_session(made.id)
        await store.delete_session(made.id)
        again = await store.import_session(exported, [])
    assert (again.labels, again.budget) == ({"team": "a"}, Budget(max_tokens=9))


@pytest.mark.parametrize("given", [None, 5, "session", ["id", "s"]])
async def test_an_export_that_is_no_session_is_agentstores_error(given: Any) -> None:
    async with agentstore.open("memory://") as store:
        with pytest.raises(InvalidInputError, match="not a valid session"):
            await store.import_session(given, [])
        assert await store.list_sessions() == []

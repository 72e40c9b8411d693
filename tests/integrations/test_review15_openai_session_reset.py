"""Review 15 (OpenAI Agents SDK): an `AgentStoreSession` whose agentstore session was
deleted, or deleted and made again, since it last read it.

The object kept the items it had folded and read on from its last sequence number: after
`agentstore delete` (a user resetting a conversation) a long-lived session object (one per
conversation in a server process) still gave the model the deleted conversation, forever;
once the session was made again its first events were skipped, and `pop_item()` spun in
a busy loop (its `expected_seq` named an event the new session never had).

The SDK's own `Runner` on its own `agents.testing.ScriptedModel`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner
from agents.testing import ScriptedModel, assistant_message

import agentstore
from agentstore import Store
from agentstore.integrations.openai_agents import AgentStoreSession


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True, pricing=False) as s:
        yield s


def user_contents(model: ScriptedModel) -> list[object]:
    sent = model.calls[-1].input
    return [item.get("content") for item in sent if item.get("role") == "user"]


async def test_a_deleted_conversation_is_not_sent_to_the_model_again(store: Store) -> None:
    model = ScriptedModel([[assistant_message(text)] for text in ("Noted", "4111", "Hi", "?")])
    agent = Agent(name="a", model=model)
    session = AgentStoreSession(store, "conv")
    await Runner.run(agent, "my card is 4111", session=session)
    await Runner.run(agent, "what is my card?", session=session)  # reads the first run's
    assert user_contents(model) == ["my card is 4111", "what is my card?"]

    await store.delete_session("conv")  # the user resets the conversation
    assert await session.get_items() == []
    await Runner.run(agent, "hi", session=session)
    assert user_contents(model) == ["hi"]

    # Made again by someone else, shorter or longer than what this object had seen.
    await store.delete_session("conv")
    await AgentStoreSession(store, "conv").add_items([{"role": "user", "content": "new"}])
    await Runner.run(agent, "again", session=session)
    assert user_contents(model) == ["new", "again"]


async def test_pop_item_of_a_session_made_again_takes_its_items(tmp_path: Path) -> None:
    # A data directory: its reads wait on a worker thread, so the loop can time a spin
    # out (over memory, every await of the spin completed at once).
    async with agentstore.open(tmp_path / "data") as store:
        await _pop_of_a_session_made_again(store)


async def _pop_of_a_session_made_again(store: Store) -> None:
    session = AgentStoreSession(store, "remade")
    await session.add_items([{"content": "old-1"}, {"content": "old-2"}, {"content": "old-3"}])
    assert len(await session.get_items()) == 3
    await store.delete_session("remade")
    await AgentStoreSession(store, "remade").add_items([{"content": "new"}])

    # It spun for ever (a ConcurrencyError on every try); 5 s is far more than it needs.
    popped = await asyncio.wait_for(session.pop_item(), 5)
    assert popped == {"content": "new"}
    assert await AgentStoreSession(store, "remade").get_items() == []
    assert await asyncio.wait_for(session.pop_item(), 5) is None


async def test_clear_after_a_delete_writes_nothing(store: Store) -> None:
    session = AgentStoreSession(store, "cleared")
    await session.add_items([{"content": "a"}])
    await session.get_items()
    await store.delete_session("cleared")
    await session.clear_session()  # nothing stored: no session made for a marker
    with pytest.raises(agentstore.SessionNotFoundError):
        await store.get_session("cleared")

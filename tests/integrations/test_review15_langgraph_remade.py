"""Review 15 (LangGraph): a thread deleted and made again behind a saver's back.

`AgentStoreSaver` keeps an index of each thread it has read and read on from its last
sequence number. When another saver (another worker, another process) deleted the thread
(`adelete_thread`, `agentstore delete`) and ran it again, the first saver served the
deleted checkpoints, and its next run continued from them: the deleted state was written
into the new thread, where every reader saw it again.

Real graphs (no model needed) on real savers, one store.
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

import agentstore
from agentstore import Store
from agentstore.integrations.langgraph import AgentStoreSaver


class Notes(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]


def notes_graph(saver: AgentStoreSaver) -> Any:
    async def keep(state: Notes) -> Notes:
        return {}

    builder = StateGraph(Notes)
    builder.add_node("keep", keep)
    builder.add_edge(START, "keep")
    builder.add_edge("keep", END)
    return builder.compile(checkpointer=saver)


CONFIG: dict[str, Any] = {"configurable": {"thread_id": "support-7"}}


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True, pricing=False) as s:
        yield s


async def test_a_thread_made_again_by_another_saver_is_read_anew(store: Store) -> None:
    first, second = notes_graph(AgentStoreSaver(store)), notes_graph(AgentStoreSaver(store))
    for note in ("card 4111", "address", "phone"):
        await first.ainvoke({"notes": [note]}, CONFIG)
    assert (await first.aget_state(CONFIG)).values == {"notes": ["card 4111", "address", "phone"]}

    await second.checkpointer.adelete_thread("support-7")  # the user asked to forget
    await second.ainvoke({"notes": ["fresh"]}, CONFIG)

    assert (await first.aget_state(CONFIG)).values == {"notes": ["fresh"]}
    await first.ainvoke({"notes": ["next"]}, CONFIG)
    assert (await second.aget_state(CONFIG)).values == {"notes": ["fresh", "next"]}
    history = [s async for s in first.aget_state_history(CONFIG)]
    assert all("card 4111" not in s.values.get("notes", []) for s in history)


async def test_a_thread_made_again_longer_is_read_anew(store: Store) -> None:
    """Made again with more events than the saver had read: the event at its last
    sequence number is another one."""
    first, second = notes_graph(AgentStoreSaver(store)), notes_graph(AgentStoreSaver(store))
    await first.ainvoke({"notes": ["old"]}, CONFIG)
    assert (await first.aget_state(CONFIG)).values == {"notes": ["old"]}

    await store.delete_session("support-7")  # `agentstore delete`, say
    for note in ("a", "b", "c", "d"):
        await second.ainvoke({"notes": [note]}, CONFIG)

    assert (await first.aget_state(CONFIG)).values == {"notes": ["a", "b", "c", "d"]}
    seen_first = [s.values async for s in first.aget_state_history(CONFIG)]
    seen_second = [s.values async for s in second.aget_state_history(CONFIG)]
    assert seen_first == seen_second
    assert all("old" not in values.get("notes", []) for values in seen_first)


async def test_a_thread_deleted_and_not_made_again_has_no_state(store: Store) -> None:
    first = notes_graph(AgentStoreSaver(store))
    await first.ainvoke({"notes": ["old"]}, CONFIG)
    await store.delete_session("support-7")
    assert await first.checkpointer.aget_tuple(CONFIG) is None

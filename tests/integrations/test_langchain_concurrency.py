"""Review 9c: one AgentStoreCallbackHandler recording LangGraph runs at once.

The handler remembered the exceptions it had recorded in one set for all runs and
emptied it whenever any outermost run ended: a run finishing while another's tool error
was still climbing through its chains made that error be recorded a second time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph

import agentstore
from agentstore import EventType
from agentstore.integrations.langchain import AgentStoreCallbackHandler
from tests.integrations.test_langchain_react import ScriptedChatModel, react_graph


@pytest.mark.parametrize("where", ["memory", "file"])
async def test_a_run_ending_meanwhile_does_not_record_anothers_error_twice(
    where: str, tmp_path: Path
) -> None:
    failing = asyncio.Event()

    @tool
    async def book(flight: str) -> str:
        """Book a flight (the booking service is down)."""
        failing.set()  # let the other run finish while this error climbs out
        raise ConnectionError("booking service down")

    async def wait_then_answer(state: MessagesState) -> dict[str, Any]:
        await failing.wait()
        return {"messages": [AIMessage("done")]}

    quick = StateGraph(MessagesState)
    quick.add_node("answer", wait_then_answer)
    quick.add_edge(START, "answer")
    quick.add_edge("answer", END)
    script = [AIMessage("", tool_calls=[{"name": "book", "args": {"flight": "LH 1"}, "id": "t1"}])]
    booking = react_graph(ScriptedChatModel(messages=iter(script)), [book])

    opened = agentstore.open(in_memory=True) if where == "memory" else agentstore.open(tmp_path)
    async with opened as store:
        handler = AgentStoreCallbackHandler(store)

        def config(thread: str) -> Any:
            return {"configurable": {"thread_id": thread}, "callbacks": [handler]}

        quick_out, booking_out = await asyncio.gather(
            quick.compile().ainvoke({"messages": [HumanMessage("hi")]}, config("quick")),
            booking.ainvoke({"messages": [HumanMessage("book")]}, config("booking")),
            return_exceptions=True,
        )
        assert isinstance(quick_out, dict)
        assert isinstance(booking_out, ConnectionError)
        errors = await store.replay("booking", types=[EventType.ERROR])
        assert [(e.payload["kind"], e.metadata.call_id) for e in errors] == [
            ("ConnectionError", "t1")
        ]
        state = await store.get_state("booking")
        assert (state.errors, state.open_calls) == (1, {})

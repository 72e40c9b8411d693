"""Review 9c: a LangGraph interrupt inside a tool (a human's approval) is not an error.

`on_tool_error` recorded the `GraphInterrupt` a tool raises to pause the graph as an
`error` event, so every approval counted as a failure.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.types import Command, interrupt

import agentstore
from agentstore import EventType
from agentstore.integrations.langchain import AgentStoreCallbackHandler
from agentstore.integrations.langgraph import AgentStoreSaver
from tests.integrations.test_langchain_react import ScriptedChatModel, config, react_graph


@tool
def book(flight: str) -> str:
    """Book a flight once the user approves."""
    answer = interrupt(f"Book {flight}?")
    return f"booked {flight}" if answer == "yes" else "not booked"


async def test_a_tool_paused_for_approval_is_closed_as_interrupted_not_failed(
    store: agentstore.Store,
) -> None:
    script = [
        AIMessage("", tool_calls=[{"name": "book", "args": {"flight": "LH 1938"}, "id": "c1"}]),
        AIMessage("Booked."),
    ]
    graph = react_graph(ScriptedChatModel(messages=iter(script)), [book], AgentStoreSaver(store))
    handler = AgentStoreCallbackHandler(store)

    paused = await graph.ainvoke(
        {"messages": [HumanMessage("Book LH 1938")]}, config("hitl", handler)
    )
    assert paused["__interrupt__"][0].value == "Book LH 1938?"
    state = await store.get_state("hitl")
    assert (state.errors, state.open_calls) == (0, {})

    done = await graph.ainvoke(Command(resume="yes"), config("hitl", handler))
    assert done["messages"][-1].content == "Booked."
    calls = await store.replay("hitl", types=[EventType.TOOL_CALLED, EventType.TOOL_RESULT])
    assert [(e.type, e.metadata.call_id) for e in calls] == [
        ("tool_called", "c1"),
        ("tool_result", "c1"),
        ("tool_called", "c1"),  # LangGraph runs the tool again on resume
        ("tool_result", "c1"),
    ]
    assert calls[1].payload["interrupted"] is True
    assert calls[3].payload["result"] == "booked LH 1938"
    state = await store.get_state("hitl")
    assert (state.errors, state.tool_calls, state.open_calls) == (0, 2, {})

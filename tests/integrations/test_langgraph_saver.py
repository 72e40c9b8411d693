"""AgentStoreSaver in a real graph beyond the conformance suite: human-in-the-loop
interrupts resumed from another process's store, and listing every thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

import agentstore
from agentstore import EventType
from agentstore.integrations.langchain import AgentStoreCallbackHandler
from agentstore.integrations.langgraph import CHECKPOINT_EVENT, AgentStoreSaver


class Booking(TypedDict, total=False):
    flight: str
    approved: str
    status: str


def booking_graph(saver: AgentStoreSaver) -> Any:
    async def choose(state: Booking) -> Booking:
        return {"flight": "LH 1938"}

    async def approve(state: Booking) -> Booking:
        answer = interrupt({"question": f"Book {state['flight']}?"})
        return {"approved": answer}

    async def book(state: Booking) -> Booking:
        return {"status": "booked" if state["approved"] == "yes" else "cancelled"}

    builder = StateGraph(Booking)
    builder.add_node("choose", choose)
    builder.add_node("approve", approve)
    builder.add_node("book", book)
    builder.add_edge(START, "choose")
    builder.add_edge("choose", "approve")
    builder.add_edge("approve", "book")
    builder.add_edge("book", END)
    return builder.compile(checkpointer=saver)


async def test_an_interrupted_graph_resumes_from_the_store_in_a_new_process(
    tmp_path: Path,
) -> None:
    data = tmp_path / "agent-data"
    config: dict[str, Any] = {"configurable": {"thread_id": "booking-1"}}
    async with agentstore.open(data) as store:
        handler = AgentStoreCallbackHandler(store)
        graph = booking_graph(AgentStoreSaver(store))
        first = await graph.ainvoke({}, {**config, "callbacks": [handler]})
        assert first["__interrupt__"][0].value == {"question": "Book LH 1938?"}
        # An interrupt is the graph pausing, not an error.
        assert await store.replay("booking-1", types=[EventType.ERROR]) == []

    async with agentstore.open(data) as store:  # another process, same data directory
        graph = booking_graph(AgentStoreSaver(store))
        paused = await graph.aget_state(config)
        assert paused.next == ("approve",)
        assert paused.values == {"flight": "LH 1938"}
        done = await graph.ainvoke(Command(resume="yes"), config)
        assert done == {"flight": "LH 1938", "approved": "yes", "status": "booked"}
        assert (await graph.aget_state(config)).next == ()


async def test_listing_without_a_thread_covers_every_thread(store: agentstore.Store) -> None:
    saver = AgentStoreSaver(store)
    graph = booking_graph(saver)
    for thread in ("a-1", "weird thread/2"):
        await graph.ainvoke({}, {"configurable": {"thread_id": thread}})
    await store.create_session(name="not a graph")  # other sessions are not threads

    listed = [t async for t in saver.alist(None)]
    threads = {t.config["configurable"]["thread_id"] for t in listed}
    assert threads == {"a-1", "weird thread/2"}
    stored = 0
    for session in await store.list_sessions(labels={"framework": "langgraph"}):
        stored += len(await store.replay(session.id, types=[CHECKPOINT_EVENT]))
    assert len(listed) == stored
    assert len([t async for t in saver.alist(None, limit=3)]) == 3

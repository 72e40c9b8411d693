"""A LangGraph ReAct agent on a scripted chat model, recorded by the handler and the saver.

The graph is LangGraph's ReAct loop (a model node, `ToolNode`, `tools_condition`) built
by hand: `create_react_agent` is deprecated in LangGraph 1.x (its successor lives in the
`langchain` package, which the extra does not pull in). The model is LangChain's own
`GenericFakeChatModel`, scripted with tool calls and `usage_metadata`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import agentstore
from agentstore import EventType
from agentstore.integrations.langchain import AgentStoreCallbackHandler, thread_session_id
from agentstore.integrations.langgraph import CHECKPOINT_EVENT, WRITES_EVENT, AgentStoreSaver


class ScriptedChatModel(GenericFakeChatModel):
    """GenericFakeChatModel that can be given tools (it answers from its script anyway)."""

    model_name: str = "scripted-react-1"
    seen: list[list[BaseMessage]] = []  # noqa: RUF012 - pydantic copies the default

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return await super()._agenerate(messages, *args, **kwargs)


def usage(tokens_in: int, tokens_out: int, cache_read: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        "input_token_details": {"cache_read": cache_read},
    }


def weather_script(city: str = "Berlin", call_id: str = "call_1") -> Iterator[AIMessage]:
    return iter(
        [
            AIMessage(
                content="",
                tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": call_id}],
                usage_metadata=usage(120, 15, cache_read=100),  # type: ignore[arg-type]
            ),
            AIMessage(content=f"It is sunny in {city}.", usage_metadata=usage(160, 9)),  # type: ignore[arg-type]
        ]
    )


@tool
def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return f"sunny, 21 C in {city}"


@tool
def broken_weather(city: str) -> str:
    """A weather tool whose backend is down."""
    raise ConnectionError(f"weather service unreachable for {city}")


def react_graph(model: ScriptedChatModel, tools: list[Any], checkpointer: Any = None) -> Any:
    bound = model.bind_tools(tools)

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def config(thread_id: str, *callbacks: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "callbacks": list(callbacks)}


def kinds(events: list[agentstore.Event]) -> list[str]:
    return [e.type for e in events if not e.type.startswith("langgraph_")]


async def test_react_run_is_recorded_and_checkpointed_in_the_threads_session(
    store: agentstore.Store,
) -> None:
    model = ScriptedChatModel(messages=weather_script())
    graph = react_graph(model, [get_weather], AgentStoreSaver(store))
    handler = AgentStoreCallbackHandler(store)

    out = await graph.ainvoke(
        {"messages": [HumanMessage("Weather in Berlin?")]}, config("t-1", handler)
    )

    assert out["messages"][-1].content == "It is sunny in Berlin."
    session = await store.get_session("t-1")  # the thread id is the session id
    assert session.labels == {"framework": "langgraph", "thread_id": "t-1"}
    events = await store.get_events("t-1")
    assert kinds(events) == [
        "llm_request",
        "llm_response",
        "tool_called",
        "tool_result",
        "llm_request",
        "llm_response",
    ]
    request, response, called, result = [e for e in events if not e.type.startswith("langgraph_")][
        :4
    ]
    assert request.payload["model"] == "scripted-react-1"
    assert request.metadata.provider == "scriptedchatmodel"
    assert request.payload["messages"] == [{"role": "human", "content": "Weather in Berlin?"}]
    assert response.metadata.call_id == request.metadata.call_id
    assert response.payload["tool_calls"] == [
        {"id": "call_1", "name": "get_weather", "args": {"city": "Berlin"}}
    ]
    assert (response.metadata.tokens_in, response.metadata.tokens_out) == (120, 15)
    assert response.metadata.cache_read_tokens == 100
    assert called.payload == {"tool": "get_weather", "args": {"city": "Berlin"}}
    assert called.metadata.call_id == result.metadata.call_id == "call_1"
    assert result.payload["result"] == "sunny, 21 C in Berlin"

    state = await store.get_state("t-1")
    assert (state.tokens.input, state.tokens.output) == (280, 24)
    assert state.tool_calls == 1 and state.errors == 0
    assert state.open_calls == {}
    # The saver's checkpoints share the session, after each super-step.
    assert sum(e.type == CHECKPOINT_EVENT for e in events) >= 4
    assert any(e.type == WRITES_EVENT for e in events)


async def test_a_thread_resumes_from_its_stored_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "agent-data"
    async with agentstore.open(data) as store:
        first = ScriptedChatModel(messages=weather_script())
        graph = react_graph(first, [get_weather], AgentStoreSaver(store))
        await graph.ainvoke({"messages": [HumanMessage("Weather in Berlin?")]}, config("t-2"))

    # A new process: a new store on the same directory, a new saver and model.
    async with agentstore.open(data) as store:
        second = ScriptedChatModel(messages=iter([AIMessage("You asked about Berlin.")]))
        graph = react_graph(second, [get_weather], AgentStoreSaver(store))
        snapshot = await graph.aget_state({"configurable": {"thread_id": "t-2"}})
        assert [m.type for m in snapshot.values["messages"]] == ["human", "ai", "tool", "ai"]

        out = await graph.ainvoke({"messages": [HumanMessage("What did I ask?")]}, config("t-2"))
        # The model got the whole stored conversation plus the new question.
        assert second.seen[-1][0].content == "Weather in Berlin?"
        assert [m.type for m in second.seen[-1]] == ["human", "ai", "tool", "ai", "human"]
        assert out["messages"][-1].content == "You asked about Berlin."
        history = [
            s async for s in graph.aget_state_history({"configurable": {"thread_id": "t-2"}})
        ]
        assert len(history) == len(await store.replay("t-2", types=[CHECKPOINT_EVENT]))


async def test_a_failing_tool_is_one_error_linked_to_its_call(store: agentstore.Store) -> None:
    model = ScriptedChatModel(messages=weather_script())
    graph = react_graph(model, [broken_weather], AgentStoreSaver(store))
    model.messages = iter(
        [
            AIMessage(
                content="",
                tool_calls=[{"name": "broken_weather", "args": {"city": "Oslo"}, "id": "c-9"}],
            )
        ]
    )
    handler = AgentStoreCallbackHandler(store)

    with pytest.raises(ConnectionError):
        await graph.ainvoke({"messages": [HumanMessage("Oslo?")]}, config("t-3", handler))

    errors = await store.replay("t-3", types=[EventType.ERROR])
    assert len(errors) == 1  # not again for each chain the exception left
    assert errors[0].payload["kind"] == "ConnectionError"
    assert errors[0].metadata.call_id == "c-9"
    assert errors[0].metadata.tool_name == "broken_weather"
    state = await store.get_state("t-3")
    assert state.errors == 1 and state.open_calls == {}


async def test_a_failing_node_is_recorded_once_with_its_name(store: agentstore.Store) -> None:
    async def flaky(state: MessagesState) -> dict[str, Any]:
        raise RuntimeError("planner crashed")

    builder = StateGraph(MessagesState)
    builder.add_node("planner", flaky)
    builder.add_edge(START, "planner")
    builder.add_edge("planner", END)
    graph = builder.compile()
    handler = AgentStoreCallbackHandler(store)

    with pytest.raises(RuntimeError):
        await graph.ainvoke({"messages": [HumanMessage("plan")]}, config("t-4", handler))

    errors = await store.replay("t-4", types=[EventType.ERROR])
    assert [(e.payload["error"], e.payload["chain"]) for e in errors] == [
        ("planner crashed", "planner")
    ]


async def test_a_failing_model_call_closes_its_request(store: agentstore.Store) -> None:
    class TimingOutModel(ScriptedChatModel):
        async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("provider timed out")

    graph = react_graph(TimingOutModel(messages=iter([])), [get_weather])
    handler = AgentStoreCallbackHandler(store)

    with pytest.raises(TimeoutError):
        await graph.ainvoke({"messages": [HumanMessage("hi")]}, config("t-5", handler))

    events = await store.get_events("t-5")
    assert [e.type for e in events] == ["llm_request", "error"]  # once, not per chain
    assert events[1].metadata.call_id == events[0].metadata.call_id
    assert events[1].payload["kind"] == "TimeoutError"
    assert (await store.get_state("t-5")).open_calls == {}


async def test_explicit_session_and_thread_ids_that_are_not_session_ids(
    store: agentstore.Store,
) -> None:
    mine = await store.create_session(name="mine")
    await react_graph(ScriptedChatModel(messages=weather_script()), [get_weather]).ainvoke(
        {"messages": [HumanMessage("?")]},
        config("ignored", AgentStoreCallbackHandler(store, mine.id)),
    )
    assert len(await store.get_events(mine.id)) == 6
    assert [s.id for s in await store.list_sessions()] == [mine.id]

    odd = "user:42/chat 7"
    await react_graph(ScriptedChatModel(messages=weather_script()), [get_weather]).ainvoke(
        {"messages": [HumanMessage("?")]}, config(odd, AgentStoreCallbackHandler(store))
    )
    sid = thread_session_id(odd)
    assert sid.startswith("thread-") and sid == thread_session_id(odd)
    assert (await store.get_session(sid)).labels["thread_id"] == odd


async def test_runs_without_a_thread_get_a_session_each(store: agentstore.Store) -> None:
    handler = AgentStoreCallbackHandler(store)
    for _ in range(2):
        model = ScriptedChatModel(messages=iter([AIMessage("hello")]))
        await model.ainvoke([HumanMessage("hi")], {"callbacks": [handler]})
    sessions = await store.list_sessions()
    assert len(sessions) == 2
    for s in sessions:
        assert [e.type for e in await store.get_events(s.id)] == ["llm_request", "llm_response"]


async def test_a_bad_session_id_is_refused_before_anything_runs(
    store: agentstore.Store,
) -> None:
    with pytest.raises(agentstore.InvalidSessionIdError):
        AgentStoreCallbackHandler(store, "../etc")
    assert await store.list_sessions() == []


async def test_the_saver_refuses_a_config_without_thread_id(store: agentstore.Store) -> None:
    saver = AgentStoreSaver(store)
    with pytest.raises(agentstore.InvalidInputError, match="thread_id"):
        await saver.aget_tuple({"configurable": {}})
    with pytest.raises(agentstore.InvalidInputError, match="thread_id"):
        await saver.aput({"configurable": {"thread_id": None}}, {}, {}, {})  # type: ignore[typeddict-item]
    with pytest.raises(agentstore.InvalidInputError, match="stored checkpoint"):
        await saver.aput_writes({"configurable": {"thread_id": "t"}}, [("ch", 1)], "task")
    assert await store.list_sessions() == []


async def test_a_tool_call_id_reused_in_a_later_turn_links_to_its_own_call(
    store: agentstore.Store,
) -> None:
    # Some providers number tool calls per response: both turns ask for "call_1".
    model = ScriptedChatModel(messages=iter([*weather_script("Rome"), *weather_script("Oslo")]))
    graph = react_graph(model, [get_weather], AgentStoreSaver(store))
    handler = AgentStoreCallbackHandler(store)
    for city in ("Rome", "Oslo"):
        await graph.ainvoke({"messages": [HumanMessage(f"{city}?")]}, config("t-6", handler))

    called = await store.replay("t-6", types=[EventType.TOOL_CALLED])
    results = await store.replay("t-6", types=[EventType.TOOL_RESULT])
    assert [c.metadata.call_id for c in called] == ["call_1", "call_1"]
    assert [r.payload["result"] for r in results] == ["sunny, 21 C in Rome", "sunny, 21 C in Oslo"]
    state = await store.get_state("t-6")
    assert state.tool_calls == 2 and state.open_calls == {}


async def test_a_cancelled_run_records_the_cancellation_as_the_calls_error(
    store: agentstore.Store,
) -> None:
    import asyncio

    started = asyncio.Event()

    @tool
    async def slow_weather(city: str) -> str:
        """A weather tool that never answers."""
        started.set()
        await asyncio.Event().wait()
        return "unreachable"

    call = {"name": "slow_weather", "args": {"city": "Rome"}, "id": "call_1"}
    slow = ScriptedChatModel(messages=iter([AIMessage("", tool_calls=[call])]))
    run = asyncio.create_task(
        react_graph(slow, [slow_weather]).ainvoke(
            {"messages": [HumanMessage("Rome?")]}, config("t-7", AgentStoreCallbackHandler(store))
        )
    )
    with anyio.fail_after(30):  # a safety net, not a timing assumption
        await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    errors = await store.replay("t-7", types=[EventType.ERROR])
    assert [(e.payload["kind"], e.metadata.call_id) for e in errors] == [
        ("CancelledError", "call_1")
    ]
    assert (await store.get_state("t-7")).open_calls == {}


SLOW_CALL = {"name": "get_weather", "args": {"city": "Rome"}, "id": "call_1"}

CRASHING_RUN = """
import asyncio, os, sys
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
import agentstore
from agentstore.integrations.langchain import AgentStoreCallbackHandler
from tests.integrations.test_langchain_react import (
    SLOW_CALL, ScriptedChatModel, config, react_graph,
)

@tool
def get_weather(city: str) -> str:
    \"\"\"The process dies in the middle of the call.\"\"\"
    os._exit(3)

async def main():
    async with agentstore.open(sys.argv[1]) as store:
        model = ScriptedChatModel(messages=iter([AIMessage("", tool_calls=[SLOW_CALL])]))
        await react_graph(model, [get_weather]).ainvoke(
            {"messages": [HumanMessage("Rome?")]}, config("t-8", AgentStoreCallbackHandler(store))
        )

asyncio.run(main())
"""


async def test_a_call_cut_off_by_a_crash_stays_open_without_poisoning_the_next_run(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    data = tmp_path / "agent-data"
    root = Path(__file__).resolve().parents[2]
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(data)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == 3, crashed.stderr

    async with agentstore.open(data) as store:
        orphan = (await store.replay("t-8", types=[EventType.TOOL_CALLED]))[0]
        # The next run on the thread reuses the id "call_1" (the provider numbers calls
        # per response): its result closes its own call, and the orphan stays visible.
        fresh = ScriptedChatModel(messages=weather_script("Oslo"))
        await react_graph(fresh, [get_weather]).ainvoke(
            {"messages": [HumanMessage("Oslo?")]}, config("t-8", AgentStoreCallbackHandler(store))
        )
        state = await store.get_state("t-8")
        assert [(c.sequence_number, c.name, c.call_id) for c in state.open_calls.values()] == [
            (orphan.sequence_number, "get_weather", "call_1")
        ]
        result = (await store.replay("t-8", types=[EventType.TOOL_RESULT]))[0]
        assert result.payload["result"] == "sunny, 21 C in Oslo"


async def test_a_completion_model_into_a_named_session_created_on_first_use(
    store: agentstore.Store,
) -> None:
    from langchain_core.language_models.fake import FakeListLLM

    handler = AgentStoreCallbackHandler(store, "nightly-report")
    llm = FakeListLLM(responses=["All green."])
    assert await llm.ainvoke("Summarise the night", {"callbacks": [handler]}) == "All green."

    assert (await store.get_session("nightly-report")).labels == {"framework": "langchain"}
    request, response = await store.get_events("nightly-report")
    assert (request.type, request.payload["prompt"]) == ("llm_request", "Summarise the night")
    assert (response.type, response.payload["content"]) == ("llm_response", "All green.")
    assert response.metadata.call_id == request.metadata.call_id


async def test_a_thread_deleted_between_runs_is_recorded_again(store: agentstore.Store) -> None:
    handler = AgentStoreCallbackHandler(store)
    graph = react_graph(ScriptedChatModel(messages=iter([AIMessage("one"), AIMessage("two")])), [])
    await graph.ainvoke({"messages": [HumanMessage("1")]}, config("t-9", handler))
    await store.delete_session("t-9")  # the handler has already seen (and made) it
    await graph.ainvoke({"messages": [HumanMessage("2")]}, config("t-9", handler))

    events = await store.get_events("t-9")
    assert [e.type for e in events] == ["llm_request", "llm_response"]
    assert events[0].payload["messages"] == [{"role": "human", "content": "2"}]
    assert (await store.get_session("t-9")).labels == {"framework": "langgraph", "thread_id": "t-9"}

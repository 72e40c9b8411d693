"""Review 9c: a session's budget stops a LangChain / LangGraph run recorded by the handler.

With LangChain's default `raise_error=False`, the handler's `BudgetExceededError` was
logged and swallowed by LangChain: the model was called anyway, past the budget, and its
response was recorded without the request the store had refused (an answer to no call).
"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

import agentstore
from agentstore import Budget, BudgetExceededError, EventType
from agentstore.integrations.langchain import AgentStoreCallbackHandler
from tests.integrations.test_langchain_react import (
    ScriptedChatModel,
    config,
    get_weather,
    react_graph,
    usage,
    weather_script,
)


@pytest.mark.parametrize("raise_error", [False, True])
async def test_a_budget_stops_the_graph_before_the_next_model_call(
    store: agentstore.Store, raise_error: bool
) -> None:
    await store.create_session(session_id="capped", budget=Budget(max_tokens=100))
    model = ScriptedChatModel(messages=weather_script())  # 135 tokens, then a second call
    graph = react_graph(model, [get_weather])
    handler = AgentStoreCallbackHandler(store, raise_error=raise_error)

    with pytest.raises(BudgetExceededError):
        await graph.ainvoke({"messages": [HumanMessage("Weather?")]}, config("capped", handler))

    events = await store.get_events("capped")
    assert [e.type for e in events if e.type != EventType.ERROR] == [
        "llm_request",
        "llm_response",
        "tool_called",
        "tool_result",
    ]
    state = await store.get_state("capped")
    assert state.tokens.total == 135 and state.open_calls == {}


async def test_a_refused_request_records_no_response_without_it(
    store: agentstore.Store,
) -> None:
    await store.create_session(session_id="capped-model", budget=Budget(max_tokens=5))
    script = [AIMessage("one", usage_metadata=usage(8, 2))]
    model = ScriptedChatModel(messages=iter(script))
    handler = AgentStoreCallbackHandler(store, "capped-model")
    await model.ainvoke("hi", config={"callbacks": [handler]})
    with pytest.raises(BudgetExceededError):
        await model.ainvoke("again", config={"callbacks": [handler]})
    requests = await store.replay("capped-model", types=[EventType.LLM_REQUEST])
    responses = await store.replay("capped-model", types=[EventType.LLM_RESPONSE])
    assert [r.metadata.call_id for r in responses] == [q.metadata.call_id for q in requests]
    assert len(requests) == 1

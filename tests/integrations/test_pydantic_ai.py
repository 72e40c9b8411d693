"""pydantic-ai: runs recorded by AgentStoreCapability, on pydantic-ai's own TestModel and
FunctionModel (no key, no network)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, ModelRetry
from pydantic_ai.exceptions import CallDeferred
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

import agentstore
from agentstore import Budget, BudgetExceededError, EventType, Store
from agentstore.integrations.pydantic_ai import (
    MESSAGES_TYPE,
    AgentStoreCapability,
    conversation_session_id,
    message_history,
)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True, pricing=False) as s:
        yield s


def last_tool_returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    return [
        p
        for p in messages[-1].parts
        if isinstance(messages[-1], ModelRequest) and isinstance(p, ToolReturnPart)
    ]


async def test_a_run_on_test_model_is_recorded(store: Store) -> None:
    agent = Agent(TestModel(), capabilities=[AgentStoreCapability(store)])

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    result = await agent.run("add something")
    sid = result.conversation_id
    events = await store.get_events(sid)
    assert [e.type for e in events] == [
        "llm_request",
        "llm_response",
        "tool_called",
        "tool_result",
        "llm_request",
        "llm_response",
        MESSAGES_TYPE,
    ]
    requests = [e for e in events if e.type == EventType.LLM_REQUEST]
    responses = [e for e in events if e.type == EventType.LLM_RESPONSE]
    assert [r.metadata.call_id for r in responses] == [r.metadata.call_id for r in requests]
    assert {(r.metadata.model, r.metadata.provider) for r in requests} == {("test", "test")}
    assert all(r.metadata.duration_ms is not None for r in responses)
    # The request records its newest message (here: the user's prompt).
    first_parts = requests[0].payload["messages"][0]["parts"]
    assert [p["content"] for p in first_parts if p["part_kind"] == "user-prompt"] == [
        "add something"
    ]
    # Tokens add up to what pydantic-ai counted.
    usage = result.usage
    state = await store.get_state(sid)
    assert (state.tokens.input, state.tokens.output) == (usage.input_tokens, usage.output_tokens)
    # The tool call and its result share the model's tool_call_id.
    called, returned = events[2], events[3]
    assert called.payload == {"tool": "add", "args": {"a": 0, "b": 0}}
    assert returned.payload["result"] == 0
    assert called.metadata.call_id == returned.metadata.call_id
    assert called.metadata.call_id == last_tool_returns(result.all_messages()[:3])[0].tool_call_id
    assert state.open_calls == {}
    assert (await store.get_session(sid)).labels == {"framework": "pydantic-ai"}


async def test_function_model_tools_retries_and_errors(store: Store) -> None:
    turns: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        turns.append(list(messages))
        step = len(turns)
        if step == 1:
            return ModelResponse(parts=[ToolCallPart("flaky", {"x": 1}, tool_call_id="call_0")])
        if step == 2:  # the same id again, as some providers do
            return ModelResponse(parts=[ToolCallPart("flaky", {"x": 2}, tool_call_id="call_0")])
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(model), capabilities=[AgentStoreCapability(store, "s1")])

    @agent.tool_plain
    def flaky(x: int) -> str:
        """Fail once, then work."""
        if x == 1:
            raise ModelRetry("try x=2")
        return "ok"

    result = await agent.run("go")
    assert result.output == "done"
    events = await store.get_events("s1")
    tool_events = [
        (e.type, e.metadata.call_id)
        for e in events
        if e.type in (EventType.TOOL_CALLED, EventType.TOOL_RESULT, EventType.ERROR)
    ]
    assert tool_events == [
        ("tool_called", "call_0"),
        ("error", "call_0"),  # the retry ended the first call
        ("tool_called", "call_0"),
        ("tool_result", "call_0"),
    ]
    retry = next(e for e in events if e.type == EventType.ERROR)
    assert retry.payload["kind"] == "ToolRetryError"  # how pydantic-ai carries a ModelRetry
    assert "try x=2" in retry.payload["error"]
    state = await store.get_state("s1")
    assert (state.tool_calls, state.errors, state.open_calls) == (2, 1, {})


async def test_a_tool_that_raises_is_recorded_and_reraised(store: Store) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart("explode", {}, tool_call_id="t1")])

    agent = Agent(FunctionModel(model), capabilities=[AgentStoreCapability(store, "s2")])

    @agent.tool_plain
    def explode() -> str:
        """Always fails."""
        raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"):
        await agent.run("go")
    events = await store.get_events("s2")
    errors = [e for e in events if e.type == EventType.ERROR]
    # One error, linked to the call; the run does not record the same exception twice.
    assert [(e.payload["kind"], e.metadata.call_id) for e in errors] == [("ValueError", "t1")]
    assert (await store.get_state("s2")).open_calls == {}
    assert MESSAGES_TYPE not in {e.type for e in events}


async def test_a_model_request_that_raises_is_recorded_and_reraised(store: Store) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ConnectionError("provider down")

    agent = Agent(FunctionModel(model), capabilities=[AgentStoreCapability(store, "s3")])
    with pytest.raises(ConnectionError, match="provider down"):
        await agent.run("hi")
    request, failed = await store.get_events("s3")
    assert request.type == EventType.LLM_REQUEST
    assert failed.type == EventType.ERROR
    assert failed.metadata.call_id == request.metadata.call_id
    assert failed.payload["error"] == "provider down"
    assert (
        failed.payload["kind"] == "ConnectionError" and "Traceback" in failed.payload["traceback"]
    )
    state = await store.get_state("s3")
    assert (state.errors, state.open_calls) == (1, {})


async def test_a_conversation_resumes_from_the_store(store: Store) -> None:
    seen: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        return ModelResponse(parts=[TextPart(f"reply {len(seen)}")])

    agent = Agent(FunctionModel(model), capabilities=[AgentStoreCapability(store)])
    first = await agent.run("I am Ada")
    sid = first.conversation_id
    # Another process: only the store and the session id.
    history = await message_history(store, sid)
    assert history == first.all_messages()
    second = await agent.run("Who am I?", message_history=history)
    assert second.conversation_id == sid  # same conversation, same session
    prompts = [
        p.content
        for m in seen[-1]
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, UserPromptPart)
    ]
    assert prompts == ["I am Ada", "Who am I?"]
    assert await message_history(store, sid) == second.all_messages()
    # A new conversation gets its own session.
    third = await agent.run("Hello")
    assert third.conversation_id != sid
    assert len(await message_history(store, third.conversation_id)) == 2


async def test_one_session_for_many_conversations_when_given(store: Store) -> None:
    agent = Agent(TestModel(), capabilities=[AgentStoreCapability(store, "all-runs")])
    await agent.run("a")
    await agent.run("b")
    runs = await store.replay("all-runs", types=[MESSAGES_TYPE])
    assert len(runs) == 2
    assert len(await message_history(store, "all-runs")) == 4


async def test_a_budget_stops_the_run_before_the_next_request(store: Store) -> None:
    await store.create_session(session_id="capped", budget=Budget(max_tokens=10))
    agent = Agent(TestModel(), capabilities=[AgentStoreCapability(store, "capped")])

    @agent.tool_plain
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with pytest.raises(BudgetExceededError):
        await agent.run("add")
    kinds = [e.type for e in await store.get_events("capped")]
    # The first request went out; the second was refused before it was sent.
    assert kinds.count("llm_request") == 1
    assert kinds[-1] == "error"
    refused = (await store.get_events("capped"))[-1]
    assert refused.payload["kind"] == "BudgetExceededError"


async def test_without_messages_nothing_of_the_conversation_is_kept(store: Store) -> None:
    capability = AgentStoreCapability(store, "quiet", record_messages=False)
    agent = Agent(TestModel(), capabilities=[capability])
    await agent.run("secret")
    events = await store.get_events("quiet")
    assert MESSAGES_TYPE not in {e.type for e in events}
    assert all(e.payload.get("messages") is None for e in events if e.type == "llm_request")
    assert await message_history(store, "quiet") == []


async def test_bad_session_id_is_our_error(store: Store) -> None:
    with pytest.raises(agentstore.InvalidInputError):
        AgentStoreCapability(store, "")
    with pytest.raises(agentstore.SessionNotFoundError):
        await message_history(store, "missing")


async def test_a_streamed_run_is_recorded_too(store: Store) -> None:
    agent = Agent(TestModel(), capabilities=[AgentStoreCapability(store, "streamed")])
    async with agent.run_stream("hi") as run:
        output = await run.get_output()
    events = await store.get_events("streamed")
    assert [e.type for e in events] == ["llm_request", "llm_response", MESSAGES_TYPE]
    assert events[1].payload["content"] == output
    assert events[1].metadata.tokens_out


def test_the_docs_example_runs(tmp_path: Path) -> None:
    page = Path(__file__).parents[2] / "docs" / "integrations" / "pydantic-ai.md"
    (code,) = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "tool_called" in done.stdout


def test_a_sync_store_is_refused_with_our_error() -> None:
    with (
        agentstore.open_sync(in_memory=True) as sync_store,
        pytest.raises(agentstore.InvalidInputError, match="async Store"),
    ):
        AgentStoreCapability(sync_store)  # type: ignore[arg-type]


async def test_a_failed_error_record_never_hides_the_runs_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = await agentstore.open(in_memory=True)
    capability = AgentStoreCapability(s, "gone")

    class RunFailed(Exception):
        pass

    async def failing_run() -> None:
        raise RunFailed("the run's own")

    await s.close()
    run = SimpleNamespace(run_id="r")
    with pytest.raises(RunFailed):
        await capability.wrap_run(run, handler=failing_run)  # type: ignore[arg-type]
    assert "could not record the error of a run in session gone" in caplog.text


async def test_a_model_failing_mid_stream_is_one_error_linked_to_its_request(store: Store) -> None:
    # Review 9c: pydantic-ai cancels a streamed request when the consumer's stream raises;
    # the request was closed with a CancelledError and the real error recorded apart.
    # Review 10: the tokens the stream had used (pydantic-ai adds them to the run's usage)
    # were not counted: they come as an llm_response marked "error" before the error.
    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        yield "Hello there, a partial answer"
        raise ConnectionError("stream dropped")

    agent = Agent(FunctionModel(stream_function=stream), capabilities=[AgentStoreCapability(store)])

    async def consume() -> None:
        async with agent.run_stream("hi", conversation_id="mid-stream") as run:
            async for _ in run.stream_text():
                pass

    with pytest.raises(ConnectionError, match="stream dropped"):
        await consume()
    request, partial, failed = await store.get_events("mid-stream")
    assert (request.type, partial.type, failed.type) == (
        EventType.LLM_REQUEST,
        EventType.LLM_RESPONSE,
        EventType.ERROR,
    )
    assert failed.metadata.call_id == partial.metadata.call_id == request.metadata.call_id
    assert (failed.payload["kind"], failed.payload["error"]) == (
        "ConnectionError",
        "stream dropped",
    )
    assert partial.payload["finish_reason"] == "error"
    # FunctionModel's estimate, as pydantic-ai counts the run: 50 in, one per word out.
    assert (partial.metadata.tokens_in, partial.metadata.tokens_out) == (50, 5)
    state = await store.get_state("mid-stream")
    assert (state.errors, state.open_calls) == (1, {})
    assert (state.tokens.input, state.tokens.output) == (50, 5)


async def test_a_run_cancelled_during_a_model_request_closes_it_once(store: Store) -> None:
    asked = anyio.Event()

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        asked.set()
        await anyio.sleep_forever()
        raise AssertionError("not reached")

    agent = Agent(FunctionModel(model), capabilities=[AgentStoreCapability(store, "cut")])
    async with anyio.create_task_group() as tg:
        tg.start_soon(agent.run, "hi")
        await asked.wait()
        tg.cancel_scope.cancel()
    request, failed = await store.get_events("cut")
    assert failed.type == EventType.ERROR and failed.payload["kind"] == "CancelledError"
    assert failed.metadata.call_id == request.metadata.call_id
    state = await store.get_state("cut")
    assert (state.errors, state.open_calls) == (1, {})


async def test_a_conversation_id_that_is_no_session_id_is_recorded_and_resumed(
    store: Store,
) -> None:
    # Review 9c: pydantic-ai takes any conversation id; "user:42" failed the whole run
    # with InvalidSessionIdError (and a warning that its error could not be recorded).
    agent = Agent(TestModel(), capabilities=[AgentStoreCapability(store)])
    first = await agent.run("hi", conversation_id="user:42")
    sid = conversation_session_id("user:42")
    assert sid.startswith("conversation-") and sid == conversation_session_id(sid)
    assert [e.type for e in await store.get_events(sid)][-1] == MESSAGES_TYPE
    history = await message_history(store, first.conversation_id)
    again = await agent.run("again", message_history=history)
    assert again.conversation_id == "user:42"
    assert len(await message_history(store, "user:42")) == len(again.all_messages())
    with pytest.raises(agentstore.InvalidSessionIdError):
        AgentStoreCapability(store, "user:42")  # an explicit session id must be one


async def test_a_deferred_tool_call_is_closed_as_deferred_not_failed(store: Store) -> None:
    # Review 9c: a tool handing its call over (CallDeferred, for a result from outside)
    # was recorded as an error of kind CallDeferred.
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("render", {}, tool_call_id="r1")])
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(
        FunctionModel(model),
        output_type=[str, DeferredToolRequests],
        capabilities=[AgentStoreCapability(store, "deferred")],
    )

    @agent.tool_plain
    def render() -> str:
        """Render on a worker elsewhere."""
        raise CallDeferred

    first = await agent.run("go")
    assert isinstance(first.output, DeferredToolRequests)
    called, handed_over = await store.replay(
        "deferred", types=[EventType.TOOL_CALLED, EventType.TOOL_RESULT]
    )
    assert handed_over.metadata.call_id == called.metadata.call_id == "r1"
    assert handed_over.payload["deferred"] is True
    state = await store.get_state("deferred")
    assert (state.errors, state.open_calls) == (0, {})
    results = DeferredToolResults(calls={"r1": "rendered"})
    again = await agent.run(message_history=first.all_messages(), deferred_tool_results=results)
    assert again.output == "done"
    assert (await store.get_state("deferred")).errors == 0

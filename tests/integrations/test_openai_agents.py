"""OpenAI Agents SDK: runs recorded by AgentStoreRunHooks, items kept by AgentStoreSession.

Every run goes through the SDK's own `Runner` on its own `agents.testing.ScriptedModel`
(no key, no network).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import Usage

import agentstore
from agentstore import EventType, Store
from agentstore.integrations.openai_agents import (
    CLEAR_TYPE,
    ITEM_TYPE,
    POP_TYPE,
    AgentStoreRunHooks,
    AgentStoreSession,
)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True, pricing=False) as s:
        yield s


@function_tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@function_tool
def broken(x: int) -> int:
    """A tool that fails."""
    raise RuntimeError("tool broke")


def usage(i: int, o: int, cached: int = 0) -> Usage:
    from openai.types.responses.response_usage import InputTokensDetails

    return Usage(
        requests=1,
        input_tokens=i,
        output_tokens=o,
        total_tokens=i + o,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
    )


async def test_a_run_with_tools_is_recorded_call_by_call(store: Store) -> None:
    model = ScriptedModel(
        [
            ModelStep(
                output=[
                    function_call("add", {"a": 1, "b": 2}, call_id="call_0"),
                    function_call("broken", {"x": 1}, call_id="call_1"),
                ],
                usage=usage(10, 5, cached=4),
            ),
            ModelStep(output=[assistant_message("3")], usage=usage(20, 2)),
        ]
    )
    agent = Agent(name="calc", instructions="Be terse.", model=model, tools=[add, broken])
    hooks = AgentStoreRunHooks(store, "run-1", model="gpt-4o-mini")
    result = await Runner.run(agent, "1+2?", hooks=hooks)
    assert result.final_output == "3"

    events = await store.get_events("run-1")
    kinds = [e.type for e in events]
    assert kinds[0] == "agent_started" and kinds[-1] == "agent_finished"
    assert kinds.count("llm_request") == kinds.count("llm_response") == 2
    assert kinds.count("tool_called") == kinds.count("tool_result") == 2

    requests = [e for e in events if e.type == EventType.LLM_REQUEST]
    responses = [e for e in events if e.type == EventType.LLM_RESPONSE]
    assert [r.metadata.model for r in requests] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert requests[0].payload["prompt"] == "Be terse."
    assert requests[0].payload["messages"] == [{"content": "1+2?", "role": "user"}]
    # Each response is linked to its request and carries the usage.
    assert [r.metadata.call_id for r in responses] == [r.metadata.call_id for r in requests]
    assert [(r.metadata.tokens_in, r.metadata.tokens_out) for r in responses] == [
        (10, 5),
        (20, 2),
    ]
    assert responses[0].metadata.cache_read_tokens == 4
    assert responses[1].payload["content"] == "3"
    assert all(r.metadata.duration_ms is not None for r in responses)

    # Tool calls carry the SDK's tool_call_id; the failing tool's result is the message
    # the SDK gave the model.
    calls = {e.metadata.call_id: e for e in events if e.type == EventType.TOOL_CALLED}
    results = {e.metadata.call_id: e for e in events if e.type == EventType.TOOL_RESULT}
    assert set(calls) == set(results) == {"call_0", "call_1"}
    assert calls["call_0"].payload["args"] == {"a": 1, "b": 2}
    assert results["call_0"].payload["result"] == 3
    assert "error" in str(results["call_1"].payload["result"]).lower()

    state = await store.get_state("run-1")
    assert (state.tokens.input, state.tokens.output) == (30, 7)
    assert state.tool_calls == 2
    assert state.open_calls == {}
    session = await store.get_session("run-1")  # created on first use
    assert session.labels == {"framework": "openai-agents"}


async def test_a_model_step_that_raises_is_recorded_and_reraised(store: Store) -> None:
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("add", {"a": 1, "b": 1}, call_id="c")]),
            ModelStep.raise_error(RuntimeError("provider down")),
        ]
    )
    agent = Agent(name="calc", model=model, tools=[add])
    hooks = AgentStoreRunHooks(store, "run-err", model="gpt-4o-mini")
    with pytest.raises(RuntimeError, match="provider down"):
        async with hooks:
            await Runner.run(agent, "1+1?", hooks=hooks)
    events = await store.get_events("run-err")
    failed = [e for e in events if e.type == EventType.ERROR]
    assert len(failed) == 1
    assert failed[0].payload["error"] == "provider down"
    assert failed[0].payload["kind"] == "RuntimeError"
    second_request = [e for e in events if e.type == EventType.LLM_REQUEST][1]
    assert failed[0].metadata.call_id == second_request.metadata.call_id
    state = await store.get_state("run-err")
    assert (state.errors, state.open_calls) == (1, {})


async def test_without_the_block_an_interrupted_call_stays_open(store: Store) -> None:
    model = ScriptedModel([ModelStep.raise_error(RuntimeError("provider down"))])
    agent = Agent(name="a", model=model)
    with pytest.raises(RuntimeError):
        await Runner.run(agent, "hi", hooks=AgentStoreRunHooks(store, "run-x", model="m"))
    state = await store.get_state("run-x")
    assert [(c.type, c.name) for c in state.open_calls.values()] == [("llm_request", "m")]


async def test_handoffs_are_recorded(store: Store) -> None:
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("transfer_to_billing", {}, call_id="h1")]),
            ModelStep(output=[assistant_message("refunded")]),
        ]
    )
    billing = Agent(name="billing", model=model)
    triage = Agent(name="triage", model=model, handoffs=[billing])
    hooks = AgentStoreRunHooks(store, "run-h", model="gpt-4o")
    result = await Runner.run(triage, "refund please", hooks=hooks)
    assert result.final_output == "refunded"
    events = await store.get_events("run-h")
    handoffs = [e.payload for e in events if e.type == "agent_handoff"]
    assert handoffs == [{"from_agent": "triage", "to_agent": "billing"}]
    started = [e.payload["agent"] for e in events if e.type == "agent_started"]
    assert started == ["triage", "billing"]


async def test_the_model_name_comes_from_the_agent_when_it_names_one(store: Store) -> None:
    hooks = AgentStoreRunHooks(store, "s")
    model = ScriptedModel([[assistant_message("ok")]])
    agent = Agent(name="a", model=model)
    await hooks.on_llm_start(None, Agent(name="named", model="gpt-4.1"), None, [])
    await Runner.run(agent, "hi", hooks=hooks)
    requests = [e for e in await store.get_events("s") if e.type == EventType.LLM_REQUEST]
    assert (requests[0].metadata.model, requests[0].metadata.provider) == ("gpt-4.1", "openai")
    # A model object that names no model, and no model= given: its class name.
    assert requests[1].metadata.model == "ScriptedModel"


async def test_session_resumes_a_conversation(store: Store) -> None:
    model = ScriptedModel([[assistant_message("Hi Ada")], [assistant_message("You are Ada")]])
    agent = Agent(name="a", model=model)
    session = AgentStoreSession(store, "conv")
    await Runner.run(agent, "I am Ada", session=session)
    # A new session object (another process, a restart) sees the same history.
    resumed = AgentStoreSession(store, "conv")
    result = await Runner.run(agent, "Who am I?", session=resumed)
    assert result.final_output == "You are Ada"
    sent = model.calls[-1].input
    assert [item.get("content") for item in sent if item.get("role") == "user"] == [
        "I am Ada",
        "Who am I?",
    ]
    items = await resumed.get_items()
    assert len(items) == 4
    assert await resumed.get_items(limit=1) == items[-1:]
    assert await resumed.get_items(limit=0) == []


async def test_hooks_and_session_share_one_session(store: Store) -> None:
    model = ScriptedModel([[assistant_message("ok")]])
    agent = Agent(name="a", model=model)
    hooks = AgentStoreRunHooks(store, "both", model="gpt-4o")
    await Runner.run(agent, "hi", hooks=hooks, session=AgentStoreSession(store, "both"))
    kinds = {e.type for e in await store.get_events("both")}
    assert {ITEM_TYPE, "llm_request", "llm_response", "agent_started"} <= kinds


async def test_pop_and_clear_append_markers_and_never_rewrite(store: Store) -> None:
    session = AgentStoreSession(store, "p")
    assert await session.pop_item() is None
    await session.clear_session()  # nothing stored yet: nothing written
    await session.add_items([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    before = await store.get_events("p")
    assert await session.pop_item() == {"role": "user", "content": "b"}
    assert await session.get_items() == [{"role": "user", "content": "a"}]
    after = await store.get_events("p")
    assert after[: len(before)] == before  # append-only
    assert after[-1].type == POP_TYPE and after[-1].payload == {"item_seq": 2}
    await session.clear_session()
    assert await session.get_items() == []
    assert (await store.get_events("p"))[-1].type == CLEAR_TYPE
    await session.add_items([{"role": "user", "content": "c"}])
    assert await AgentStoreSession(store, "p").get_items() == [{"role": "user", "content": "c"}]


async def test_two_writers_never_pop_the_same_item(store: Store) -> None:
    one = AgentStoreSession(store, "shared")
    await one.add_items([{"content": str(i)} for i in range(3)])
    two = AgentStoreSession(store, "shared")
    await two.get_items()  # two has seen all three items
    first = await one.pop_item()
    # two's view is stale; its pop must notice the marker and take the next item.
    second = await two.pop_item()
    assert (first, second) == ({"content": "2"}, {"content": "1"})
    assert await AgentStoreSession(store, "shared").get_items() == [{"content": "0"}]


async def test_items_survive_a_reopened_file_store(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path / "data") as s:
        await AgentStoreSession(s, "keep").add_items([{"role": "user", "content": "x"}])
        await AgentStoreSession(s, "keep").pop_item()
        await AgentStoreSession(s, "keep").add_items([{"role": "user", "content": "y"}])
    async with agentstore.open(tmp_path / "data") as s:
        assert await AgentStoreSession(s, "keep").get_items() == [{"role": "user", "content": "y"}]


async def test_bad_arguments_get_agentstore_errors(store: Store) -> None:
    with pytest.raises(agentstore.InvalidInputError):
        AgentStoreRunHooks(store, "")
    with pytest.raises(agentstore.InvalidInputError):
        AgentStoreSession(store, 42)  # type: ignore[arg-type]
    with pytest.raises(agentstore.InvalidInputError):
        await AgentStoreSession(store, "s").get_items(limit=-1)


def test_import_agentstore_imports_no_framework() -> None:
    # Nor does the CLI: `agentstore otel` imports OpenTelemetry only when it runs.
    code = (
        "import sys, agentstore, agentstore.integrations, agentstore_cli.app\n"
        "bad = [m for m in ('agents', 'pydantic_ai', 'opentelemetry') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_a_streamed_run_is_recorded_too(store: Store) -> None:
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("add", {"a": 2, "b": 2}, call_id="s0")]),
            ModelStep(output=[assistant_message("4")], usage=usage(7, 1)),
        ]
    )
    agent = Agent(name="calc", model=model, tools=[add])
    hooks = AgentStoreRunHooks(store, "streamed", model="gpt-4o")
    run = Runner.run_streamed(agent, "2+2?", hooks=hooks)
    async for _ in run.stream_events():
        pass
    assert run.final_output == "4"
    events = await store.get_events("streamed")
    kinds = [e.type for e in events]
    assert kinds.count("llm_response") == 2 and kinds.count("tool_result") == 1
    assert kinds[-1] == "agent_finished"
    state = await store.get_state("streamed")
    assert (state.tokens.input, state.tokens.output, state.open_calls) == (7, 1, {})


def test_the_docs_example_runs(tmp_path: Path) -> None:
    page = Path(__file__).parents[2] / "docs" / "integrations" / "openai-agents.md"
    (code,) = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "LH 1938 it is." in done.stdout


async def test_a_budget_stops_the_run_before_the_next_llm_call(store: Store) -> None:
    await store.create_session(session_id="capped", budget=agentstore.Budget(max_tokens=10))
    model = ScriptedModel(
        [
            ModelStep(
                output=[function_call("add", {"a": 1, "b": 1}, call_id="c")], usage=usage(50, 5)
            ),
            ModelStep(output=[assistant_message("2")]),
        ]
    )
    agent = Agent(name="calc", model=model, tools=[add])
    hooks = AgentStoreRunHooks(store, "capped", model="gpt-4o")
    with pytest.raises(agentstore.BudgetExceededError):
        async with hooks:
            await Runner.run(agent, "1+1?", hooks=hooks)
    assert model.remaining_steps == 1  # the second request was never sent
    events = await store.get_events("capped")
    assert [e.type for e in events].count("llm_request") == 1
    assert events[-1].type == "error" and events[-1].payload["kind"] == "BudgetExceededError"


async def test_the_run_config_model_overrides_the_agents(store: Store) -> None:
    from agents import RunConfig

    model = ScriptedModel([[assistant_message("ok")]])
    hooks = AgentStoreRunHooks(store, "rc", model="gpt-4.1-mini")
    agent = Agent(name="a", model="gpt-4o")
    await Runner.run(agent, "hi", hooks=hooks, run_config=RunConfig(model=model))
    (request,) = [e for e in await store.get_events("rc") if e.type == EventType.LLM_REQUEST]
    assert (request.metadata.model, request.metadata.provider) == ("gpt-4.1-mini", "openai")


def test_a_sync_store_is_refused_with_our_error() -> None:
    with agentstore.open_sync(in_memory=True) as sync_store:
        with pytest.raises(agentstore.InvalidInputError, match="async Store"):
            AgentStoreRunHooks(sync_store, "s")  # type: ignore[arg-type]
        with pytest.raises(agentstore.InvalidInputError, match="async Store"):
            AgentStoreSession(sync_store, "s")  # type: ignore[arg-type]


async def test_concurrent_reads_of_one_session_object_see_each_item_once(tmp_path: Path) -> None:
    import asyncio

    # A file store: each read goes through a worker thread, so the reads interleave.
    async with agentstore.open(tmp_path / "data") as s:
        writer = AgentStoreSession(s, "c")
        await writer.add_items([{"content": str(i)} for i in range(5)])
        reader = AgentStoreSession(s, "c")
        results = await asyncio.gather(*(reader.get_items() for _ in range(4)))
    assert all(r == [{"content": str(i)} for i in range(5)] for r in results)


async def test_a_failed_error_record_never_hides_the_runs_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = await agentstore.open(in_memory=True)
    hooks = AgentStoreRunHooks(s, "gone")
    await s.close()
    with pytest.raises(RuntimeError, match="the run's own"):
        async with hooks:
            raise RuntimeError("the run's own")
    assert "could not record the error of a run in session gone" in caplog.text


async def test_one_hooks_object_for_two_runs_at_once_closes_only_the_failed_runs_calls(
    store: Store,
) -> None:
    # Review 9c: the error of one run closed the other run's open tool call with that
    # error, and the other run's result was then recorded as a second, argument-less call.
    entered, release = asyncio.Event(), asyncio.Event()

    @function_tool
    async def slow(n: int) -> str:
        """A tool that waits to be released."""
        entered.set()
        await release.wait()
        return f"ok {n}"

    hooks = AgentStoreRunHooks(store, "shared", model="m")

    async def run(agent: Agent[Any]) -> Any:
        async with hooks:
            return await Runner.run(agent, "go", hooks=hooks)

    steps = [
        ModelStep(output=[function_call("slow", {"n": 2}, call_id="c2")]),
        ModelStep(output=[assistant_message("fin")]),
    ]
    waiting = asyncio.create_task(run(Agent(name="w", model=ScriptedModel(steps), tools=[slow])))
    await entered.wait()
    failing = Agent(name="f", model=ScriptedModel([ModelStep.raise_error(RuntimeError("down"))]))
    with pytest.raises(RuntimeError, match="down"):
        await run(failing)
    release.set()
    assert (await waiting).final_output == "fin"

    events = await store.get_events("shared")
    [failed] = [e for e in events if e.type == EventType.ERROR]
    failed_request = [e for e in events if e.type == EventType.LLM_REQUEST][1]
    assert failed.metadata.call_id == failed_request.metadata.call_id
    calls = [e for e in events if e.type == EventType.TOOL_CALLED]
    [result] = [e for e in events if e.type == EventType.TOOL_RESULT]
    assert [(c.metadata.call_id, c.payload["args"]) for c in calls] == [("c2", {"n": 2})]
    assert (result.metadata.call_id, result.payload["result"]) == ("c2", "ok 2")
    state = await store.get_state("shared")
    assert (state.tool_calls, state.errors, state.open_calls) == (1, 1, {})


async def test_a_streamed_run_started_before_the_block_is_closed_by_it(store: Store) -> None:
    model = ScriptedModel(
        [
            ModelStep(output=[function_call("add", {"a": 1, "b": 1}, call_id="c")]),
            ModelStep.raise_error(RuntimeError("provider down")),
        ]
    )
    hooks = AgentStoreRunHooks(store, "streamed-err", model="m")
    result = Runner.run_streamed(Agent(name="calc", model=model, tools=[add]), "1+1?", hooks=hooks)

    async def consume() -> None:
        async with hooks:
            async for _ in result.stream_events():
                pass

    with pytest.raises(RuntimeError, match="provider down"):
        await consume()
    events = await store.get_events("streamed-err")
    [failed] = [e for e in events if e.type == EventType.ERROR]
    assert (
        failed.metadata.call_id
        == [e for e in events if e.type == EventType.LLM_REQUEST][1].metadata.call_id
    )
    state = await store.get_state("streamed-err")
    assert (state.errors, state.open_calls) == (1, {})

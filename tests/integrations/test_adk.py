"""An ADK agent run through ADK's own `Runner` on AgentStoreSessionService.

The model is ours: a `BaseLlm` subclass that answers from a script (a function call, then
text after the function's response), with `usage_metadata`, and keeps the requests it got.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types

import agentstore
from agentstore import EventType
from agentstore.integrations.adk import ADK_EVENT, AgentStoreSessionService

APP = "travel"


class ScriptedLlm(BaseLlm):
    """A model that returns scripted responses, one per call, and records each request."""

    script: list[LlmResponse]
    requests: ClassVar[list[LlmRequest]] = []

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        type(self).requests.append(llm_request)
        yield self.script.pop(0)


def usage(prompt: int, answer: int) -> types.GenerateContentResponseUsageMetadata:
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt, candidates_token_count=answer, total_token_count=prompt + answer
    )


def call_weather(city: str, call_id: str = "fc-1") -> LlmResponse:
    part = types.Part(
        function_call=types.FunctionCall(name="get_weather", args={"city": city}, id=call_id)
    )
    return LlmResponse(
        content=types.Content(role="model", parts=[part]), usage_metadata=usage(50, 7)
    )


def say(text: str) -> LlmResponse:
    return LlmResponse(
        content=types.Content(role="model", parts=[types.Part(text=text)]),
        usage_metadata=usage(80, 12),
    )


def get_weather(city: str, tool_context: ToolContext) -> dict[str, Any]:
    """Return the weather in a city."""
    tool_context.state["user:lookups"] = tool_context.state.get("user:lookups", 0) + 1
    tool_context.state["temp:scratch"] = "never stored"
    tool_context.state["last_city"] = city
    return {"city": city, "forecast": "sunny"}


def agent(*responses: LlmResponse) -> LlmAgent:
    return LlmAgent(
        name="weather_agent",
        model=ScriptedLlm(model="scripted-adk-1", script=list(responses)),
        instruction="Answer weather questions with the tool.",
        tools=[get_weather],
        output_key="last_answer",
    )


def user_says(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def run(runner: Runner, session_id: str, text: str) -> list[Any]:
    return [
        e
        async for e in runner.run_async(
            user_id="ada", session_id=session_id, new_message=user_says(text)
        )
    ]


async def test_a_run_is_recorded_event_by_event(store: agentstore.Store) -> None:
    service = AgentStoreSessionService(store)
    session = await service.create_session(app_name=APP, user_id="ada", state={"tier": "gold"})
    runner = Runner(
        app_name=APP,
        agent=agent(call_weather("Berlin"), say("Sunny in Berlin.")),
        session_service=service,
    )

    produced = await run(runner, session.id, "Weather in Berlin?")

    assert produced[-1].content.parts[0].text == "Sunny in Berlin."
    stored = await store.get_events(session.id)  # ADK's UUID is the agentstore session id
    raw = [e for e in stored if e.type == ADK_EVENT]
    # The user's message, the function call, its response, the answer: each with its id.
    assert [e.id for e in raw] == [
        e.id
        for e in (
            await service.get_session(app_name=APP, user_id="ada", session_id=session.id)
        ).events
    ]  # type: ignore[union-attr]
    assert len(raw) == 4
    assert {e.id for e in produced} <= {e.id for e in raw}

    called = await store.replay(session.id, types=[EventType.TOOL_CALLED])
    results = await store.replay(session.id, types=[EventType.TOOL_RESULT])
    assert [(c.payload["tool"], c.payload["args"], c.metadata.call_id) for c in called] == [
        ("get_weather", {"city": "Berlin"}, "fc-1")
    ]
    assert results[0].metadata.call_id == "fc-1"
    assert results[0].payload["result"] == {"city": "Berlin", "forecast": "sunny"}
    state = await store.get_state(session.id)
    assert (state.tokens.input, state.tokens.output) == (130, 19)
    assert state.tool_calls == 1 and state.open_calls == {}
    # Two model turns, not three: the function's answer (authored by the agent) is a
    # tool_result, not an llm_response (review 9c: it was both).
    responses = await store.replay(session.id, types=[EventType.LLM_RESPONSE])
    assert [(r.metadata.tokens_in, r.payload.get("content")) for r in responses] == [
        (50, None),
        (80, "Sunny in Berlin."),
    ]

    again = await service.get_session(app_name=APP, user_id="ada", session_id=session.id)
    assert again is not None
    assert again.state["tier"] == "gold"
    assert again.state["last_city"] == "Berlin"
    assert again.state["last_answer"] == "Sunny in Berlin."
    assert again.state["user:lookups"] == 1
    assert "temp:scratch" not in again.state
    assert await service.get_user_state(app_name=APP, user_id="ada") == {"lookups": 1}


async def test_a_session_resumes_from_its_stored_history(tmp_path: Path) -> None:
    data = tmp_path / "agent-data"
    async with agentstore.open(data) as store:
        service = AgentStoreSessionService(store)
        session = await service.create_session(app_name=APP, user_id="ada")
        runner = Runner(
            app_name=APP,
            agent=agent(call_weather("Oslo"), say("Rain in Oslo.")),
            session_service=service,
        )
        await run(runner, session.id, "Weather in Oslo?")

    ScriptedLlm.requests.clear()
    async with agentstore.open(data) as store:  # a new process, a new runner
        service = AgentStoreSessionService(store)
        runner = Runner(
            app_name=APP, agent=agent(say("You asked about Oslo.")), session_service=service
        )
        produced = await run(runner, session.id, "What did I ask?")

        assert produced[-1].content.parts[0].text == "You asked about Oslo."
        sent = ScriptedLlm.requests[-1].contents
        texts = [p.text for c in sent for p in (c.parts or []) if p.text]
        assert texts[0] == "Weather in Oslo?" and texts[-1] == "What did I ask?"
        assert any(p.function_response for c in sent for p in (c.parts or []))
        resumed = await service.get_session(app_name=APP, user_id="ada", session_id=session.id)
        assert resumed is not None and len(resumed.events) == 6
        assert resumed.state["user:lookups"] == 1


async def test_sessions_are_listed_filtered_and_deleted(store: agentstore.Store) -> None:
    service = AgentStoreSessionService(store)
    a = await service.create_session(app_name=APP, user_id="ada", session_id="s-a")
    await service.create_session(app_name=APP, user_id="bob", session_id="chat:bob/1")
    await service.create_session(app_name="other", user_id="ada")

    assert {s.id for s in (await service.list_sessions(app_name=APP)).sessions} == {
        "s-a",
        "chat:bob/1",
    }
    listed = (await service.list_sessions(app_name=APP, user_id="bob")).sessions
    assert [(s.id, s.user_id) for s in listed] == [("chat:bob/1", "bob")]
    # An ADK id that is not an agentstore id maps to a stable hashed one.
    sid = AgentStoreSessionService.store_session_id(APP, "bob", "chat:bob/1")
    assert (await store.get_session(sid)).labels["adk_session"] == "chat:bob/1"
    # Another user's id does not find the session.
    assert await service.get_session(app_name=APP, user_id="bob", session_id="s-a") is None

    with pytest.raises(agentstore.SessionExistsError):
        await service.create_session(app_name=APP, user_id="ada", session_id="s-a")
    await service.delete_session(app_name=APP, user_id="ada", session_id=a.id)
    assert await service.get_session(app_name=APP, user_id="ada", session_id="s-a") is None
    await service.delete_session(app_name=APP, user_id="ada", session_id="s-a")  # no error


async def test_get_session_config_limits_the_events(store: agentstore.Store) -> None:
    from google.adk.sessions.base_session_service import GetSessionConfig

    service = AgentStoreSessionService(store)
    session = await service.create_session(app_name=APP, user_id="ada")
    runner = Runner(
        app_name=APP, agent=agent(call_weather("Rome"), say("Hot.")), session_service=service
    )
    await run(runner, session.id, "Rome?")
    full = await service.get_session(app_name=APP, user_id="ada", session_id=session.id)
    assert full is not None
    last_two = await service.get_session(
        app_name=APP,
        user_id="ada",
        session_id=session.id,
        config=GetSessionConfig(num_recent_events=2),
    )
    assert last_two is not None and [e.id for e in last_two.events] == [
        e.id for e in full.events[-2:]
    ]
    none = await service.get_session(
        app_name=APP,
        user_id="ada",
        session_id=session.id,
        config=GetSessionConfig(num_recent_events=0),
    )
    assert none is not None and none.events == []


async def test_appending_to_a_missing_session_writes_nothing(store: agentstore.Store) -> None:
    from google.adk.events.event import Event
    from google.adk.sessions.session import Session

    service = AgentStoreSessionService(store)
    ghost = Session(id="ghost", app_name=APP, user_id="ada")
    with pytest.raises(agentstore.SessionNotFoundError):
        await service.append_event(ghost, Event(author="user", content=user_says("hi")))
    assert await store.list_sessions() == []
    with pytest.raises(agentstore.InvalidInputError):
        await service.create_session(app_name="", user_id="ada")


def test_adk_stays_out_of_import_agentstore_and_a_missing_extra_says_what_to_install() -> None:
    import subprocess
    import sys

    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )

    done = python(
        "import sys, agentstore; print([m for m in sys.modules if m.startswith('google')])"
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
    done = python(
        "import sys; sys.modules['google.adk'] = None\nimport agentstore.integrations.adk"
    )
    assert done.returncode != 0
    assert "pip install 'agentstore[adk]'" in done.stderr


async def test_appending_the_same_event_again_writes_nothing_twice(store: agentstore.Store) -> None:
    from google.adk.events.event import Event, EventActions

    service = AgentStoreSessionService(store)
    session = await service.create_session(app_name=APP, user_id="ada")
    part = types.Part(function_call=types.FunctionCall(name="get_weather", args={}, id="fc-7"))
    event = Event(
        author="weather_agent",
        content=types.Content(role="model", parts=[part]),
        usage_metadata=usage(10, 2),
        actions=EventActions(state_delta={"step": 1, "user:seen": True}),
    )
    await service.append_event(session, event)
    before = await store.get_events(session.id)
    await service.append_event(session, event)  # a retry after, say, a timeout

    assert [e.id for e in await store.get_events(session.id)] == [e.id for e in before]
    assert [e.type for e in before] == [ADK_EVENT, "llm_response", "tool_called", "state_updated"]
    assert len(session.events) == 1
    user_scope = [s for s in await store.list_sessions() if s.id.startswith("adk-user-")]
    assert [s.event_count for s in user_scope] == [1]


async def test_a_model_error_is_recorded_as_an_error_event(store: agentstore.Store) -> None:
    service = AgentStoreSessionService(store)
    session = await service.create_session(app_name=APP, user_id="ada")
    refused = LlmResponse(error_code="RESOURCE_EXHAUSTED", error_message="quota exceeded")
    runner = Runner(app_name=APP, agent=agent(refused), session_service=service)

    await run(runner, session.id, "Weather?")

    errors = await store.replay(session.id, types=[EventType.ERROR])
    assert [(e.payload["error"], e.payload["code"]) for e in errors] == [
        ("quota exceeded", "RESOURCE_EXHAUSTED")
    ]
    assert (await store.get_state(session.id)).errors == 1


class Opaque:
    """An object of the user's that no JSON encoder knows."""


def fetch_blob(name: str, tool_context: ToolContext) -> dict[str, Any]:
    """Return what a tool may return: raw bytes, a set, an object of the user's."""
    tool_context.state["fetched_at"] = datetime.datetime(2026, 11, 30, 6, 0)
    return {"name": name, "blob": b"\xff\xfe", "tags": {"raw"}, "handle": Opaque()}


async def test_a_tool_result_json_cannot_hold_is_recorded_not_fatal(
    store: agentstore.Store,
) -> None:
    # Review 9c: ADK's own session services keep such a result; ours failed the run in
    # `model_dump(mode="json")` before anything was recorded.
    call = types.Part(
        function_call=types.FunctionCall(name="fetch_blob", args={"name": "x"}, id="fc-9")
    )
    blob_agent = LlmAgent(
        name="blob_agent",
        model=ScriptedLlm(
            model="scripted-adk-1",
            script=[LlmResponse(content=types.Content(role="model", parts=[call])), say("Got it.")],
        ),
        tools=[fetch_blob],
    )
    service = AgentStoreSessionService(store)
    session = await service.create_session(app_name=APP, user_id="ada")
    runner = Runner(app_name=APP, agent=blob_agent, session_service=service)
    produced = await run(runner, session.id, "Fetch x")
    assert produced[-1].content.parts[0].text == "Got it."

    [result] = await store.replay(session.id, types=[EventType.TOOL_RESULT])
    assert result.metadata.call_id == "fc-9"
    assert result.payload["result"]["blob"] == "b'\\xff\\xfe'"
    assert result.payload["result"]["tags"] == ["raw"]
    assert "Opaque object" in result.payload["result"]["handle"]
    again = await service.get_session(app_name=APP, user_id="ada", session_id=session.id)
    assert again is not None and again.state["fetched_at"] == "2026-11-30T06:00:00"
    assert len(again.events) == 4


async def test_thinking_and_tool_use_prompt_tokens_are_counted(store: agentstore.Store) -> None:
    # Review 9c: Gemini reports thinking apart from the answer; only the answer's tokens
    # were counted as output (a thinking model's cost 24 times too low), and the tool-use
    # prompt was left out of the input.
    from google.adk.events.event import Event

    service = AgentStoreSessionService(store)
    session = await service.create_session(app_name=APP, user_id="ada")
    usage = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=1000,
        tool_use_prompt_token_count=200,
        candidates_token_count=100,
        thoughts_token_count=5000,
        total_token_count=6300,
    )
    turn = Event(
        author="weather_agent",
        content=types.Content(role="model", parts=[types.Part(text="Sunny.")]),
        usage_metadata=usage,
    )
    await service.append_event(session, turn)
    [response] = await store.replay(session.id, types=[EventType.LLM_RESPONSE])
    assert (response.metadata.tokens_in, response.metadata.tokens_out) == (1200, 5100)
    assert response.metadata.reasoning_tokens == 5000
    assert (await store.get_state(session.id)).tokens.total == 6300


def get_weather_down(city: str) -> dict[str, Any]:
    """Return the weather in a city (the service is down)."""
    raise RuntimeError(f"weather service down for {city}")


async def test_a_raising_tool_closes_its_call_with_the_error(store: agentstore.Store) -> None:
    """ADK ends the run with an event that holds only the exception (no call id): the
    invocation's one open call is the one it ended (review: the call stayed open)."""
    service = AgentStoreSessionService(store)
    session = await service.create_session(app_name=APP, user_id="ada")
    call = types.FunctionCall(name="get_weather_down", args={"city": "Rome"}, id="fc-9")
    turn = LlmResponse(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
    down = LlmAgent(
        name="weather_agent",
        model=ScriptedLlm(model="scripted-adk-1", script=[turn]),
        tools=[get_weather_down],
    )
    runner = Runner(app_name=APP, agent=down, session_service=service)

    with pytest.raises(RuntimeError, match="weather service down for Rome"):
        await run(runner, session.id, "Weather in Rome?")

    errors = await store.replay(session.id, types=[EventType.ERROR])
    assert [(e.payload["error"], e.payload["code"], e.metadata.call_id) for e in errors] == [
        ("weather service down for Rome", "RuntimeError", "fc-9")
    ]
    state = await store.get_state(session.id)
    assert state.open_calls == {} and state.errors == 1

"""Review 9c: tool results no JSON encoder takes as they are never lose a call that succeeded.

The tracking layer promises "recording never fails after the tool itself succeeded": each
value below used to make `to_json_value` (or the append after it) raise, which ended the
user's run (pydantic-ai, the OpenAI Agents SDK) or left the call open (LangChain).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import io
import itertools
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

import agentstore
from agentstore import EventType, Store
from agentstore.tracking import to_json_value


class BrokenRepr:
    def __repr__(self) -> str:
        raise ValueError("no repr today")


def _cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def _deep(levels: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(levels):
        inner.append([])
        inner = inner[0]
    return outer


HOSTILE: dict[str, tuple[Any, Any]] = {
    # name: (value, what is recorded)
    "bytes not UTF-8": (b"\xff\x00", "b'\\xff\\x00'"),
    "bytearray not UTF-8": (bytearray(b"\xfe"), "b'\\xfe'"),
    "nested bytes": ({"raw": [b"\x80", b"ok"]}, {"raw": ["b'\\x80'", "ok"]}),
    "repr raises": (BrokenRepr(), "<BrokenRepr object>"),
    "cycle": (_cycle(), {"name": "loop", "self": "<circular reference>"}),
    "int beyond 64 bits": ([10**40, 5], ["1" + "0" * 40, 5]),
    "lone surrogate": ({"text": "a\ud800b"}, {"text": "a\\ud800b"}),
    "mixed": (
        {"when": datetime.date(2026, 11, 30), "tags": {"x"}, "nan": math.nan, "b": b"\xff"},
        {"when": "2026-11-30", "tags": ["x"], "nan": None, "b": "b'\\xff'"},
    ),
}


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True, pricing=False) as s:
        yield s


@pytest.mark.parametrize("name", list(HOSTILE))
def test_to_json_value_converts_what_the_store_would_refuse(name: str) -> None:
    value, expected = HOSTILE[name]
    assert to_json_value(value) == expected


def test_nesting_deeper_than_the_store_writes_is_cut_not_refused() -> None:
    converted = to_json_value(_deep(400))
    depth = 0
    while isinstance(converted, list) and converted:
        converted, depth = converted[0], depth + 1
    assert converted == "<nested too deep>" and depth < 255


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_track_tool_records_the_result_and_succeeds(store: Store, name: str) -> None:
    value, expected = HOSTILE[name]
    session = await store.create_session()
    async with store.track_tool(session.id, "hostile", {"n": 1}) as call:
        call.result = value
    [result] = await store.replay(session.id, types=[EventType.TOOL_RESULT])
    assert result.payload["result"] == expected
    assert (await store.get_state(session.id)).open_calls == {}


async def _one_tool_call_run(
    store: Store, session_id: str, tool: Any, args: Any, call_id: str
) -> Any:
    """An OpenAI Agents run, recorded into `session_id`, whose scripted model calls `tool`
    once with `args`, then answers "done"; returns the run's final output."""
    from agents import Agent, Runner, set_tracing_disabled
    from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

    from agentstore.integrations.openai_agents import AgentStoreRunHooks

    set_tracing_disabled(True)
    try:
        model = ScriptedModel(
            [
                ModelStep(output=[function_call(tool.name, args, call_id=call_id)]),
                ModelStep(output=[assistant_message("done")]),
            ]
        )
        agent = Agent(name="a", model=model, tools=[tool])
        hooks = AgentStoreRunHooks(store, session_id, model="m")
        result = await Runner.run(agent, "go", hooks=hooks)
    finally:
        set_tracing_disabled(False)
    return result.final_output


async def test_an_openai_agents_run_with_a_hostile_tool_result_completes(store: Store) -> None:
    pytest.importorskip("agents")
    from agents import function_tool

    @function_tool
    def fetch_blob(n: int) -> dict[str, Any]:
        """Return raw bytes."""
        return {"blob": b"\xff\xfe", "at": datetime.date(2026, 11, 30)}

    assert await _one_tool_call_run(store, "oa", fetch_blob, {"n": 1}, "c1") == "done"
    [recorded] = await store.replay("oa", types=[EventType.TOOL_RESULT])
    assert recorded.metadata.call_id == "c1"
    assert (await store.get_state("oa")).open_calls == {}


async def test_a_langchain_tool_with_a_hostile_result_is_closed(store: Store) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.tools import tool

    from agentstore.integrations.langchain import AgentStoreCallbackHandler

    @tool
    def fetch_blob(n: int) -> Any:
        """Return raw bytes."""
        return {"blob": b"\xff\xfe", "tags": {"a"}}

    handler = AgentStoreCallbackHandler(store, "lc")
    out = await fetch_blob.ainvoke({"n": 1}, config={"callbacks": [handler]})
    assert out["blob"] == b"\xff\xfe"
    [recorded] = await store.replay("lc", types=[EventType.TOOL_RESULT])
    assert recorded.payload["result"] == {"blob": "b'\\xff\\xfe'", "tags": ["a"]}
    assert (await store.get_state("lc")).open_calls == {}


async def _recorded_results(store: Store, results: dict[str, Any]) -> dict[str, Any]:
    """Record each value as the result of a tool call named by its key (one session);
    return what was recorded, by tool name."""
    session = await store.create_session()
    for name, value in results.items():
        async with store.track_tool(session.id, name) as call:
            call.result = value
    recorded = await store.replay(session.id, types=[EventType.TOOL_RESULT])
    return {e.payload["tool"]: e.payload["result"] for e in recorded}


async def test_an_iterator_result_is_recorded_without_draining_it(store: Store) -> None:
    # Review 9c: pydantic's conversion iterated a generator, a map or an open file to
    # record it: the caller got an exhausted one back, and an endless one never returned.
    results: dict[str, Any] = {
        "generator": (n * n for n in range(3)),
        "nested endless": {"ticks": itertools.count()},
        "in a dict subclass": collections.OrderedDict(rows=iter([1, 2])),
        "file": io.StringIO("line one\nline two\n"),
    }
    by_tool = await _recorded_results(store, results)
    assert list(results["generator"]) == [0, 1, 4]
    assert next(results["nested endless"]["ticks"]) == 0
    assert list(results["in a dict subclass"]["rows"]) == [1, 2]
    assert results["file"].read() == "line one\nline two\n"
    assert by_tool["generator"].startswith("<generator object")
    assert by_tool["nested endless"] == {"ticks": "count(0)"}
    assert by_tool["file"].startswith("<_io.StringIO object")


class _Page(BaseModel):
    """A result model that holds an iterator (a paginated API's next rows, say)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    title: str
    rows: Iterator[int]


@dataclasses.dataclass
class _Batch:
    name: str
    items: Any


async def test_an_iterator_inside_a_model_or_dataclass_is_not_drained(store: Store) -> None:
    # Review 9c's leftover: the check for iterators stopped at dicts and lists, and
    # pydantic's conversion of a model or dataclass drained the iterator it held.
    page = _Page(title="first", rows=iter([1, 2, 3]))
    batch = _Batch(name="b", items=(n for n in range(2)))
    nested = {"pages": [_Batch(name="deep", items=iter("ab"))]}
    by_tool = await _recorded_results(store, {"model": page, "dataclass": batch, "nested": nested})
    assert list(page.rows) == [1, 2, 3]
    assert list(batch.items) == [0, 1]
    assert list(nested["pages"][0].items) == ["a", "b"]
    assert by_tool["model"]["title"] == "first"
    assert by_tool["model"]["rows"].startswith("<list_iterator object")
    assert by_tool["dataclass"]["items"].startswith("<generator object")
    assert by_tool["nested"]["pages"][0]["items"].startswith("<str_ascii_iterator object")


def test_a_model_without_iterators_keeps_pydantics_form() -> None:
    # Only a model that holds an iterator is taken field by field.
    assert to_json_value(_Batch(name="x", items=[1, (2, 3)])) == {"name": "x", "items": [1, [2, 3]]}


async def test_an_openai_agents_tool_call_with_nan_arguments_runs(store: Store) -> None:
    # Python's json reads NaN in a model's arguments; tool_called refused it, and the run
    # failed ("Error running tool") where without the hooks it ran.
    pytest.importorskip("agents")
    from agents import function_tool

    @function_tool
    def scale(x: float) -> str:
        """Scale a value."""
        return f"scaled {x}"

    assert await _one_tool_call_run(store, "nan", scale, '{"x": NaN}', "n1") == "done"
    [called] = await store.replay("nan", types=[EventType.TOOL_CALLED])
    assert called.payload["args"] == {"x": None}
    assert (await store.get_state("nan")).open_calls == {}


async def test_a_pydantic_ai_run_whose_tool_returns_a_huge_int_keeps_its_result(
    store: Store,
) -> None:
    # The run's messages (pydantic-ai's JSON form) held the int as it is: the store
    # refused the pydantic_ai_messages event and the finished run raised.
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from agentstore.integrations.pydantic_ai import AgentStoreCapability, message_history

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart("factorial", {"n": 30}, tool_call_id="f1")])
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(model), capabilities=[AgentStoreCapability(store, "big")])

    @agent.tool_plain
    def factorial(n: int) -> int:
        """n!"""
        return math.factorial(n)

    result = await agent.run("30!")
    assert result.output == "done"
    [tool_return] = [
        part
        for message in await message_history(store, "big")
        for part in message.parts
        if part.part_kind == "tool-return"
    ]
    assert tool_return.content == str(math.factorial(30))

"""OpenTelemetry: sessions as GenAI spans, exported or live (the SDK's in-memory exporter)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import SpanKind, StatusCode

import agentstore
from agentstore import Event, EventType, Metadata, Store, new_event
from agentstore.integrations import otel
from agentstore.integrations.otel import conventions as c
from agentstore.integrations.otel._spans import to_ns


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with agentstore.open(in_memory=True, pricing=False) as s:
        yield s


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def record_run(store: Store, name: str | None = "flight-agent") -> str:
    """A run with two LLM calls, a tool, a failing tool, an orphan call and a run error."""
    session = await store.create_session(name=name)
    sid = session.id
    async with store.track_llm(
        sid,
        "gpt-4o",
        [{"role": "user", "content": "BER->MUC?"}],
        prompt="Be brief.",
        provider="openai",
    ) as llm:
        llm.respond("search", tokens_in=100, tokens_out=20, finish_reason="tool_calls")
    async with store.track_tool(sid, "search_flights", {"to": "MUC"}, call_id="call_0") as t:
        t.result = [{"flight": "LH 1"}]
    with pytest.raises(TimeoutError):
        async with store.track_tool(sid, "book", {"flight": "LH 1"}, call_id="call_1"):
            raise TimeoutError("booking timed out")
    async with store.track_llm(sid, "gpt-4o", [], provider="openai") as llm:
        llm.respond("Booked.", tokens_in=150, tokens_out=5, cost_usd=0.01)
    # A call that never got its result (the process died), then a run-level error.
    await store.append(
        sid,
        new_event(EventType.TOOL_CALLED, {"tool": "email", "args": {}}).with_metadata(
            Metadata(tool_name="email", call_id="call_2")
        ),
    )
    await store.append(sid, agentstore.error(RuntimeError("agent crashed")))
    return sid


async def test_export_builds_the_session_tree(
    store: Store, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sid = await record_run(store)
    count = await otel.export(store, sid, provider)
    spans = exporter.get_finished_spans()
    assert count == len(spans) == 6
    events = await store.get_events(sid)

    (root,) = by_name(spans, "invoke_agent flight-agent")
    assert root.parent is None and root.kind == SpanKind.INTERNAL
    assert root.attributes is not None
    assert root.attributes[c.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert root.attributes[c.GEN_AI_AGENT_NAME] == "flight-agent"
    assert root.attributes[c.GEN_AI_CONVERSATION_ID] == sid
    assert root.attributes[c.GEN_AI_USAGE_INPUT_TOKENS] == 250
    assert root.attributes[c.GEN_AI_USAGE_OUTPUT_TOKENS] == 25
    assert (root.start_time, root.end_time) == (
        to_ns(events[0].timestamp),
        to_ns(events[-1].timestamp),
    )
    # The run-level error: an exception event and an ERROR status on the session span.
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes[c.ERROR_TYPE] == "RuntimeError"
    assert [e.name for e in root.events] == ["exception"]
    assert root.events[0].attributes is not None
    assert root.events[0].attributes["exception.message"] == "agent crashed"

    chats = by_name(spans, "chat gpt-4o")
    assert len(chats) == 2
    for span in spans:
        if span is not root:
            assert span.parent is not None and span.parent.span_id == root.context.span_id
            assert span.context.trace_id == root.context.trace_id
    first = chats[0] if chats[0].start_time < chats[1].start_time else chats[1]
    assert first.kind == SpanKind.CLIENT
    assert first.attributes is not None
    assert {k: first.attributes[k] for k in first.attributes if k.startswith("gen_ai.")} == {
        c.GEN_AI_OPERATION_NAME: "chat",
        c.GEN_AI_PROVIDER_NAME: "openai",
        c.GEN_AI_REQUEST_MODEL: "gpt-4o",
        c.GEN_AI_RESPONSE_MODEL: "gpt-4o",
        c.GEN_AI_USAGE_INPUT_TOKENS: 100,
        c.GEN_AI_USAGE_OUTPUT_TOKENS: 20,
        c.GEN_AI_RESPONSE_FINISH_REASONS: ("tool_calls",),
        c.GEN_AI_CONVERSATION_ID: sid,
    }
    request, response = events[0], events[1]
    assert (first.start_time, first.end_time) == (
        to_ns(request.timestamp),
        to_ns(response.timestamp),
    )
    second = chats[1] if first is chats[0] else chats[0]
    assert second.attributes is not None and second.attributes[c.AGENTSTORE_COST_USD] == 0.01

    (search,) = by_name(spans, "execute_tool search_flights")
    assert search.attributes is not None
    assert search.attributes[c.GEN_AI_TOOL_NAME] == "search_flights"
    assert search.attributes[c.GEN_AI_TOOL_CALL_ID] == "call_0"
    assert search.status.status_code == StatusCode.UNSET
    (book,) = by_name(spans, "execute_tool book")
    assert book.attributes is not None and book.attributes[c.ERROR_TYPE] == "TimeoutError"
    assert book.status.status_code == StatusCode.ERROR
    assert book.status.description == "booking timed out"
    (email,) = by_name(spans, "execute_tool email")
    assert email.attributes is not None and email.attributes[c.AGENTSTORE_OPEN_CALL] is True
    assert email.end_time == to_ns(events[-1].timestamp)

    # No content unless asked for.
    for span in spans:
        assert span.attributes is not None
        assert not {
            c.GEN_AI_INPUT_MESSAGES,
            c.GEN_AI_OUTPUT_MESSAGES,
            c.GEN_AI_SYSTEM_INSTRUCTIONS,
            c.GEN_AI_TOOL_CALL_ARGUMENTS,
            c.GEN_AI_TOOL_CALL_RESULT,
        } & set(span.attributes)


async def test_content_only_when_asked_for(
    store: Store, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sid = await record_run(store)
    await otel.export(store, sid, provider, include_content=True)
    spans = exporter.get_finished_spans()
    first = min(by_name(spans, "chat gpt-4o"), key=lambda s: s.start_time or 0)
    assert first.attributes is not None
    assert first.attributes[c.GEN_AI_INPUT_MESSAGES] == '[{"role":"user","content":"BER->MUC?"}]'
    assert first.attributes[c.GEN_AI_SYSTEM_INSTRUCTIONS] == "Be brief."
    assert first.attributes[c.GEN_AI_OUTPUT_MESSAGES] == (
        '[{"role":"assistant","parts":[{"type":"text","content":"search"}]}]'
    )
    (search,) = by_name(spans, "execute_tool search_flights")
    assert search.attributes is not None
    assert search.attributes[c.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"to":"MUC"}'
    assert search.attributes[c.GEN_AI_TOOL_CALL_RESULT] == '[{"flight":"LH 1"}]'


async def test_export_of_an_empty_unnamed_session(
    store: Store, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    session = await store.create_session()
    assert await otel.export(store, session.id, provider) == 1
    (root,) = exporter.get_finished_spans()
    assert root.name == "invoke_agent"
    assert root.start_time == root.end_time == to_ns(session.created_at)


async def test_export_of_an_unknown_session_is_our_error(
    store: Store, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(agentstore.SessionNotFoundError):
        await otel.export(store, "nope", provider)
    assert exporter.get_finished_spans() == ()


async def test_repeated_ids_pair_as_the_state_does(
    store: Store, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    session = await store.create_session()

    def call(tool: str) -> Event:
        return new_event(EventType.TOOL_CALLED, {"tool": tool}).with_metadata(
            Metadata(tool_name=tool, call_id="call_0")
        )

    result = new_event(EventType.TOOL_RESULT, {"result": 1}).with_metadata(
        Metadata(tool_name="b", call_id="call_0")
    )
    await store.append_many(session.id, [call("a"), call("b"), result])
    await otel.export(store, session.id, provider)
    spans = exporter.get_finished_spans()
    # "b" (the nearest) got the result; "a" is the orphan, still open.
    (b,) = by_name(spans, "execute_tool b")
    (a,) = by_name(spans, "execute_tool a")
    assert b.attributes is not None and c.AGENTSTORE_OPEN_CALL not in b.attributes
    assert a.attributes is not None and a.attributes[c.AGENTSTORE_OPEN_CALL] is True
    state = await store.get_state(session.id)
    assert [o.name for o in state.open_calls.values()] == ["a"]


async def test_live_listener_emits_a_span_per_finished_call(
    store: Store, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    listener = otel.live_listener(provider)
    session = await store.create_session()
    other = await store.create_session()
    sid = session.id
    call = await store.append(
        sid,
        agentstore.llm_request("gpt-4o", [], call_id="c1", provider="openai"),
    )
    listener([call])
    assert exporter.get_finished_spans() == ()  # nothing until the result arrives
    # The same id in another session does not close this call.
    stray = await store.append(other.id, agentstore.llm_response("gpt-4o", "x", call_id="c1"))
    listener([stray])
    assert exporter.get_finished_spans() == ()
    batch = await store.append_many(
        sid,
        [
            agentstore.llm_response("gpt-4o", "hi", tokens_in=3, tokens_out=4, call_id="c1"),
            agentstore.tool_called("search", {"q": "x"}, call_id="t1"),
            agentstore.tool_result("search", result=[1], call_id="t1"),
            agentstore.user_message("thanks"),
        ],
    )
    listener(batch)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["chat gpt-4o", "execute_tool search"]
    chat = spans[0]
    assert chat.attributes is not None
    assert chat.attributes[c.GEN_AI_USAGE_OUTPUT_TOKENS] == 4
    assert chat.attributes[c.GEN_AI_PROVIDER_NAME] == "openai"
    assert (chat.start_time, chat.end_time) == (to_ns(call.timestamp), to_ns(batch[0].timestamp))
    # One trace per session, with the same ids every time (a restart continues it).
    expected = otel.session_trace_context(sid)
    from opentelemetry import trace

    parent = trace.get_current_span(expected).get_span_context()
    assert all(s.context.trace_id == parent.trace_id for s in spans)
    assert all(s.parent is not None and s.parent.span_id == parent.span_id for s in spans)
    assert otel.session_trace_context(other.id) != expected


async def test_live_listener_forgets_the_oldest_orphans_past_its_bound(
    store: Store, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    listener = otel.live_listener(provider, max_open_calls=2)
    session = await store.create_session()
    calls = await store.append_many(
        session.id, [agentstore.tool_called("t", call_id=f"c{i}") for i in range(3)]
    )
    listener(calls)
    # c0 was forgotten: its result makes no span; c2's does.
    results = await store.append_many(
        session.id,
        [agentstore.tool_result("t", call_id="c0"), agentstore.tool_result("t", call_id="c2")],
    )
    listener(results)
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes[c.GEN_AI_TOOL_CALL_ID] == "c2"
    with pytest.raises(agentstore.InvalidInputError):
        otel.live_listener(provider, max_open_calls=0)


async def test_live_listener_never_raises(
    store: Store, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(TracerProvider):
        def get_tracer(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            return object()  # has no start_span

    listener = otel.live_listener(Broken())
    session = await store.create_session()
    events = await store.append_many(
        session.id,
        [agentstore.tool_called("t", call_id="c"), agentstore.tool_result("t", call_id="c")],
    )
    listener(events)  # logged, not raised: an append must never fail because of a span
    assert "could not emit an OpenTelemetry span" in caplog.text


def test_the_pinned_names_are_those_of_the_conventions() -> None:
    ours = {name: getattr(c, name) for name in c.__all__ if name.startswith("GEN_AI_")}
    assert ours
    for name, value in ours.items():
        assert getattr(gen_ai_attributes, name) == value, name
    assert c.ERROR_TYPE == error_attributes.ERROR_TYPE
    ops = gen_ai_attributes.GenAiOperationNameValues
    assert (
        ops.CHAT.value,
        ops.EXECUTE_TOOL.value,
        ops.INVOKE_AGENT.value,
    ) == (c.OP_CHAT, c.OP_EXECUTE_TOOL, c.OP_INVOKE_AGENT)


async def test_open_with_a_tracer_provider_emits_spans_live(
    provider: TracerProvider, exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    async with agentstore.open(tmp_path / "data", tracer_provider=provider) as s:
        session = await s.create_session()
        async with s.track_tool(session.id, "search", {"q": "x"}) as t:
            assert exporter.get_finished_spans() == ()  # the call is still open
            t.result = 1
        (span,) = exporter.get_finished_spans()
        assert span.name == "execute_tool search"
        assert span.attributes is not None
        assert span.attributes[c.GEN_AI_CONVERSATION_ID] == session.id
        with pytest.raises(TimeoutError):
            async with s.track_llm(session.id, "gpt-4o", [], provider="openai"):
                raise TimeoutError("slow provider")
        failed = exporter.get_finished_spans()[-1]
        assert failed.name == "chat gpt-4o"
        assert failed.status.status_code == StatusCode.ERROR
        assert failed.attributes is not None
        assert failed.attributes[c.ERROR_TYPE] == "TimeoutError"
        events = await s.get_events(session.id)
        assert (failed.start_time, failed.end_time) == (
            to_ns(events[-2].timestamp),
            to_ns(events[-1].timestamp),
        )

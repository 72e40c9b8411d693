"""Review 9c: a streamed chat model call is recorded once: its text whole, its usage once.

Providers report usage on the stream's chunks (input tokens on the first, output tokens on
the last); LangChain adds the chunks up and hands the sum to `on_llm_end`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

import agentstore
from agentstore import EventType
from agentstore.integrations.langchain import AgentStoreCallbackHandler

CHUNKS = [
    ("Sunny", {"input_tokens": 40, "output_tokens": 0, "total_tokens": 40}),
    (" in", None),
    (" Berlin.", {"input_tokens": 0, "output_tokens": 6, "total_tokens": 6}),
]


class StreamingModel(GenericFakeChatModel):
    """Streams CHUNKS, with usage on the first and the last, as providers do."""

    model_name: str = "streaming-1"
    fail_after: int | None = None

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for index, (text, usage) in enumerate(CHUNKS):
            if self.fail_after == index:
                raise ConnectionError("stream dropped")
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text, usage_metadata=usage))
            if run_manager is not None:
                await run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk


async def test_a_streamed_answer_is_one_response_with_its_usage_once(
    store: agentstore.Store,
) -> None:
    handler = AgentStoreCallbackHandler(store, "streamed")
    chunks = [
        c
        async for c in StreamingModel(messages=iter([])).astream(
            "Weather?", config={"callbacks": [handler]}
        )
    ]
    assert len(chunks) >= 3
    request, response = await store.get_events("streamed")
    assert (request.type, response.type) == (EventType.LLM_REQUEST, EventType.LLM_RESPONSE)
    assert response.metadata.call_id == request.metadata.call_id
    assert response.payload["content"] == "Sunny in Berlin."
    state = await store.get_state("streamed")
    assert (state.tokens.input, state.tokens.output, state.open_calls) == (40, 6, {})


async def test_a_stream_that_fails_part_way_is_one_error_linked_to_its_request(
    store: agentstore.Store,
) -> None:
    handler = AgentStoreCallbackHandler(store, "cut")
    model = StreamingModel(messages=iter([]), fail_after=2)
    with pytest.raises(ConnectionError, match="stream dropped"):
        async for _ in model.astream("Weather?", config={"callbacks": [handler]}):
            pass
    request, failed = await store.get_events("cut")
    assert failed.type == EventType.ERROR and failed.metadata.call_id == request.metadata.call_id
    state = await store.get_state("cut")
    assert (state.errors, state.open_calls) == (1, {})

"""An async agent that records each step in one line: helpers, tracking, automatic pricing.

    python examples/async_agent.py --data-dir ./agent-data
    agentstore replay <printed session id>
    agentstore reprice <printed session id>

The "model" and the "tools" are stand-ins (no network, no API key); the events are what
a real agent records. Each LLM call carries token counts and no cost: the store prices it.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio

import agentstore
from agentstore import Store

MODEL = "gpt-4o-mini"


async def fake_llm(messages: list[dict[str, Any]]) -> tuple[str, int, int]:
    """Stand-in for a chat API: returns (text, input tokens, output tokens)."""
    await anyio.sleep(0.01)
    prompt = " ".join(str(m["content"]) for m in messages)
    return f"Book EW 8040 (asked: {prompt[:30]}...)", 40 * len(messages) + len(prompt), 24


async def run_agent(store: Store, sid: str, question: str) -> str:
    """Answer `question`, recording every step in session `sid`."""

    @store.tool(sid)
    async def search_flights(origin: str, to: str) -> list[dict[str, Any]]:
        await anyio.sleep(0.01)
        return [{"flight": "EW 8040", "price_eur": 65}, {"flight": "LH 1938", "price_eur": 89}]

    @store.tool(sid)
    async def book(flight: str) -> dict[str, str]:
        raise TimeoutError(f"booking {flight}: the airline did not answer in 30s")

    await store.append(sid, agentstore.user_message(question))
    await store.append(sid, agentstore.plan_created(["search_flights", "pick", "book"]))
    flights = await search_flights("BER", "MUC")

    messages = [
        {"role": "system", "content": "Pick the cheapest flight."},
        {"role": "user", "content": f"{question} Options: {flights}"},
    ]
    async with store.track_llm(sid, MODEL, messages, provider="openai") as llm:
        text, tokens_in, tokens_out = await fake_llm(messages)
        llm.respond(text, tokens_in=tokens_in, tokens_out=tokens_out, finish_reason="stop")

    try:
        await book("EW 8040")
    except TimeoutError:
        await store.append(sid, agentstore.state_updated(status="booking_failed"))
    return text


async def main(data_dir: str) -> None:
    async with agentstore.open(data_dir) as store:
        session = await store.create_session(name="async-agent", labels={"example": "async"})
        answer = await run_agent(store, session.id, "Cheapest flight BER -> MUC on Friday?")
        state = await store.get_state(session.id)
    print(f"session {session.id}")
    print(f"answer: {answer}")
    print(
        f"{state.event_count} events, {state.tool_calls} tool calls, {state.errors} errors, "
        f"{state.tokens.total} tokens, ${state.tokens.cost_usd:.6f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="./agent-data")
    anyio.run(main, parser.parse_args().data_dir)

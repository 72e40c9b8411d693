"""A small, simulated flight-search agent that records everything it does in agentstore.

Run it, then look at what it did:

    python examples/flight_agent.py --data-dir ./agent-data      # prints the session id
    agentstore replay <id>
    agentstore stats <id>

No LLM or network is needed: the "tools" and the "model" are stand-ins, but the events
are the ones a real agent records: the user's message, the plan, tool calls and their
results (one fails with a timeout and is retried: a recoverable error), LLM requests and
responses with tokens and cost, and state updates.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import anyio

import agentstore
from agentstore import Store

MODEL = "gpt-4o-mini"
FLIGHTS = [
    {"flight": "LH 1938", "airline": "Lufthansa", "depart": "07:05", "price_eur": 89},
    {"flight": "EW 8040", "airline": "Eurowings", "depart": "09:40", "price_eur": 65},
    {"flight": "LH 1942", "airline": "Lufthansa", "depart": "12:15", "price_eur": 112},
]


async def call_tool(
    store: Store, sid: str, tool: str, args: dict[str, Any], *, fail: str | None = None
) -> Any:
    """Record a tool call, "run" the tool, and record its result (or its failure)."""
    call = await store.append(sid, agentstore.tool_called(tool, args))
    started = time.perf_counter()
    await anyio.sleep(0.02)  # the tool's work
    elapsed = int((time.perf_counter() - started) * 1000)
    call_id = call.metadata.call_id
    if fail is not None:
        await store.append(
            sid,
            agentstore.error(
                fail, kind="TimeoutError", recoverable=True, call_id=call_id, tool=tool
            ),
        )
        return None
    result: Any = (
        FLIGHTS if tool == "search_flights" else sorted(FLIGHTS, key=lambda f: f["price_eur"])[:2]
    )
    await store.append(
        sid, agentstore.tool_result(tool, result=result, call_id=call_id, duration_ms=elapsed)
    )
    return result


async def ask_model(
    store: Store, sid: str, prompt: str, answer: str, tokens: tuple[int, int]
) -> str:
    """Record an LLM request and its response with tokens and cost."""
    request = await store.append(
        sid,
        agentstore.llm_request(MODEL, messages=[{"role": "user", "content": prompt}]),
    )
    await anyio.sleep(0.03)  # the model thinking
    await store.append(
        sid,
        agentstore.llm_response(
            MODEL,
            answer,
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            cost_usd=round(tokens[0] * 0.15e-6 + tokens[1] * 0.6e-6, 8),
            call_id=request.metadata.call_id,
            finish_reason="stop",
        ),
    )
    return answer


async def run_agent(data_dir: str) -> str:
    """Run the agent once in a new session and return the session id."""
    async with agentstore.open(data_dir) as store:
        session = await store.create_session(
            name="flight-search", labels={"agent": "travel", "env": "demo"}
        )
        sid = session.id
        await store.append(
            sid,
            agentstore.user_message("Find me the cheapest flight from Berlin to Munich on Friday"),
        )
        await store.append(
            sid,
            agentstore.plan_created(
                ["search_flights", "rank_by_price", "recommend"], goal="cheapest BER -> MUC"
            ),
        )
        query = {"from": "BER", "to": "MUC", "date": "2026-12-04"}
        # The first search times out: a recoverable error, then a retry.
        await call_tool(store, sid, "search_flights", query, fail="flight API timed out after 5s")
        flights = await call_tool(store, sid, "search_flights", query)
        await store.append(sid, agentstore.state_updated(candidates=len(flights), stage="ranking"))
        await call_tool(store, sid, "rank_by_price", {"limit": 2})
        await ask_model(
            store,
            sid,
            "Recommend one of these flights for a budget traveller: "
            "EW 8040 (65 EUR), LH 1938 (89 EUR)",
            "Take Eurowings EW 8040 at 09:40 for 65 EUR: the cheapest, at a civilised hour.",
            (412, 58),
        )
        await store.append(sid, agentstore.state_updated(stage="done", recommended="EW 8040"))
        return sid


def main() -> None:
    """Parse arguments, run the agent, print the session id."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="./agent-data", help="agentstore data directory")
    args = parser.parse_args()
    sid = anyio.run(run_agent, args.data_dir)
    print(f"recorded session {sid} in {args.data_dir}", file=sys.stderr)
    print(sid)


if __name__ == "__main__":
    main()

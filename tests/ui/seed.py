"""Sessions for the web UI's tests, screenshots and bench, written through the public API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

import agentstore
from agentstore import Store

MODEL = "gpt-4o-mini"
FLIGHTS = [
    {"flight": "LH 1938", "airline": "Lufthansa", "price_eur": 89},
    {"flight": "EW 8040", "airline": "Eurowings", "price_eur": 65},
]

# Each of these must be shown as text and never run (see test_hostile.py).
HOSTILE_STRINGS = [
    "<script>window.__pwned = 1; alert('pwned')</script>",
    '<img src=x onerror="window.__pwned = 2; alert(2)">',
    "javascript:window.__pwned=3",
    '"><svg onload=alert(4)>',
    '<a href="javascript:alert(5)">click me</a>',
    "\u202eevil-bidi-override",
]


@dataclass
class Seeded:
    """Ids of the seeded sessions."""

    flight: str
    fork: str
    hostile: str
    others: list[str]


async def _llm(store: Store, sid: str, prompt: str, answer: str, tin: int, tout: int) -> None:
    request = await store.append(
        sid, agentstore.llm_request(MODEL, messages=[{"role": "user", "content": prompt}])
    )
    await store.append(
        sid,
        agentstore.llm_response(
            MODEL,
            answer,
            tokens_in=tin,
            tokens_out=tout,
            cost_usd=round(tin * 0.15e-6 + tout * 0.6e-6, 8),
            call_id=request.metadata.call_id,
        ),
    )


async def _tool(store: Store, sid: str, tool: str, args: dict[str, Any], ms: int) -> None:
    call = await store.append(sid, agentstore.tool_called(tool, args))
    await store.append(
        sid,
        agentstore.tool_result(tool, result=FLIGHTS, call_id=call.metadata.call_id, duration_ms=ms),
    )


async def flight_run(store: Store, name: str = "flight-search") -> str:
    """A small agent run: 14 events, the last a tool call left open."""
    session = await store.create_session(name=name, labels={"agent": "travel", "env": "demo"})
    sid = session.id
    await store.append(sid, agentstore.user_message("Cheapest flight from Berlin to Munich?"))
    await store.append(
        sid, agentstore.plan_created(["search_flights", "rank", "recommend"], goal="BER -> MUC")
    )
    call = await store.append(sid, agentstore.tool_called("search_flights", {"from": "BER"}))
    await store.append(
        sid,
        agentstore.error(
            "flight API timed out",
            kind="TimeoutError",
            recoverable=True,
            call_id=call.metadata.call_id,
        ),
    )
    await _tool(store, sid, "search_flights", {"from": "BER", "to": "MUC"}, 420)
    await store.append(sid, agentstore.state_updated(candidates=2, stage="ranking"))
    await _tool(store, sid, "rank_by_price", {"limit": 2}, 35)
    await _llm(store, sid, "Recommend one", "Take EW 8040 for 65 EUR.", 412, 58)
    await store.append(sid, agentstore.state_updated(stage="done", recommended="EW 8040"))
    await store.append(sid, agentstore.tool_called("book_flight", {"flight": "EW 8040"}))
    return sid


async def _seed(data_dir: Path) -> Seeded:
    async with agentstore.open(data_dir) as store:
        others = []
        for index in range(3):
            session = await store.create_session(
                name=f"batch-worker-{index}", labels={"env": "prod" if index else "dev"}
            )
            await store.append(session.id, agentstore.user_message(f"job {index}"))
            others.append(session.id)
        flight = await flight_run(store)
        # The fork keeps the first 7 events (up to the first successful search) and goes
        # another way: a bigger model call, no ranking tool.
        fork = await store.fork(flight, at_seq=7, name="flight-search (retry)")
        await _llm(store, fork.id, "Pick the best flight", "LH 1938: more legroom.", 1800, 240)
        await store.append(fork.id, agentstore.state_updated(stage="done", recommended="LH 1938"))
        hostile = await store.create_session(
            name="<img src=x onerror=alert('name')>", labels={"x": "<script>alert(1)</script>"}
        )
        for text in HOSTILE_STRINGS:
            await store.append(hostile.id, agentstore.user_message(text))
        await store.append(
            hostile.id,
            agentstore.new_event(
                "custom", {"html": "<b>bold?</b><iframe src='javascript:alert(6)'></iframe>"}
            ),
        )
        await store.append(hostile.id, agentstore.new_event("custom", {"huge": "A" * 300_000}))
        nested: Any = "bottom"
        for _ in range(200):
            nested = {"n": nested}
        await store.append(hostile.id, agentstore.new_event("custom", nested))
        return Seeded(flight=flight, fork=fork.id, hostile=hostile.id, others=others)


def seed(data_dir: Path) -> Seeded:
    """Write the demo sessions into `data_dir` and return their ids."""
    return anyio.run(_seed, data_dir)


async def _long(data_dir: Path, events: int) -> str:
    async with agentstore.open(data_dir) as store:
        session = await store.create_session(name=f"long-run-{events}")
        sid = session.id
        batch: list[agentstore.Event] = []
        for index in range(events // 4):
            call_id = f"c{index}"
            batch += [
                agentstore.llm_request(
                    MODEL,
                    messages=[{"role": "user", "content": f"step {index}"}],
                    call_id=f"l{index}",
                ),
                agentstore.llm_response(
                    MODEL,
                    f"answer {index}",
                    tokens_in=300 + index % 50,
                    tokens_out=40,
                    cost_usd=0.0001,
                    call_id=f"l{index}",
                ),
                agentstore.tool_called("search", {"q": f"query {index}"}, call_id=call_id),
                agentstore.tool_result(
                    "search", result=[index], call_id=call_id, duration_ms=10 + index % 90
                ),
            ]
            if len(batch) >= 800:
                await store.append_many(sid, batch)
                batch = []
        if batch:
            await store.append_many(sid, batch)
        return sid


def seed_long(data_dir: Path, events: int = 10_000) -> str:
    """Write one session of `events` events (LLM and tool pairs) and return its id."""
    return anyio.run(_long, data_dir, events)

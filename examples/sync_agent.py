"""A sync agent (no async anywhere) that records its steps through `agentstore.open_sync`.

    python examples/sync_agent.py --data-dir ./agent-data
    agentstore replay <printed session id>

Three worker threads look up airports at once through one `SyncStore`; the "model" and the
"tools" are stand-ins (no network, no API key).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import agentstore
from agentstore import SyncStore

MODEL = "claude-sonnet-4-5"
AIRPORTS = {"BER": "Berlin Brandenburg", "MUC": "Munich", "HAM": "Hamburg"}


def run_agent(store: SyncStore, sid: str, question: str) -> str:
    """Answer `question`, recording every step in session `sid`."""

    @store.tool(sid)
    def airport_name(code: str) -> str:
        time.sleep(0.01)
        return AIRPORTS[code]  # a KeyError is recorded as an error event, then raised

    store.append(sid, agentstore.user_message(question))
    with ThreadPoolExecutor(3) as pool:  # one SyncStore, many threads
        names = list(pool.map(airport_name, ["BER", "MUC", "HAM"]))
    with contextlib.suppress(KeyError):  # recorded as an error event, linked to its call
        airport_name("XXX")

    with store.track_llm(sid, MODEL, [{"role": "user", "content": question}]) as llm:
        answer = f"You can fly between {', '.join(names)}."
        # 1,200 input tokens in all, 1,000 of them read from the prompt cache.
        llm.respond(answer, tokens_in=1_200, tokens_out=40, cache_read_tokens=1_000)
    return answer


def main(data_dir: str) -> None:
    with agentstore.open_sync(data_dir) as store:
        session = store.create_session(name="sync-agent", labels={"example": "sync"})
        answer = run_agent(store, session.id, "Which airports can I fly between?")
        state = store.get_state(session.id)
    print(f"session {session.id}")
    print(f"answer: {answer}")
    print(
        f"{state.event_count} events, {state.tool_calls} tool calls, {state.errors} errors, "
        f"{state.tokens.total} tokens, ${state.tokens.cost_usd:.6f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="./agent-data")
    main(parser.parse_args().data_dir)

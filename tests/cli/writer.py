"""A writer in another process, for the --follow tests: appends one event per stdin line.

Usage: python writer.py DATA_DIR SESSION_ID; each line read appends a user message with
that text and prints `appended <text>`; `quit` (or EOF) ends it.
"""

from __future__ import annotations

import sys

import anyio

import agentstore


async def main(data_dir: str, session_id: str) -> None:
    async with agentstore.open(data_dir) as store:
        for line in sys.stdin:  # blocking reads are fine: nothing else runs here
            text = line.strip()
            if text == "quit":
                break
            await store.append(session_id, agentstore.user_message(text))
            print(f"appended {text}", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])

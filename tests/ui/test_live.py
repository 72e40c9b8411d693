"""A session being written by another process updates in the browser without a reload."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import agentstore
from tests.ui.browser import UiServer
from tests.ui.conftest import Page

# Another process (an agent) appending to the same data directory as the server reads.
WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    import agentstore

    async def main(path, session_id, events):
        async with agentstore.open(path) as store:
            for raw in json.loads(events):
                await store.append(session_id, agentstore.Event(**raw))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
    """
)


def _append(data_dir: Path, sid: str, *events: dict[str, Any]) -> None:
    subprocess.run(
        [sys.executable, "-c", WRITER, str(data_dir), sid, json.dumps(list(events))],
        check=True,
        timeout=30,
    )


async def _create(data_dir: Path) -> str:
    async with agentstore.open(data_dir) as store:
        session = await store.create_session(name="live-run")
        await store.append(session.id, agentstore.user_message("start"))
        await store.append(session.id, agentstore.plan_created(["lookup"]))
        return session.id


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[UiServer, str]]:
    data_dir = tmp_path / "agent-data"
    sid = anyio.run(_create, data_dir)
    server = UiServer(data_dir)
    try:
        yield server, sid
    finally:
        assert server.stop() == 0


def _rows(page: Page) -> dict[str, str]:
    return dict(
        page.js(
            "return [...document.querySelectorAll('#timeline .row')]"
            ".map((r) => [r.dataset.seq, r.className + ' | ' + r.innerText.replace(/\\n/g, ' ')])"
        )
    )


def test_follows_a_session_another_process_appends_to(
    page: Page, live: tuple[UiServer, str]
) -> None:
    server, sid = live
    page.base = server.base
    page.open(f"/sessions/{sid}")
    page.wait(lambda d: page.css("#live").text == "● live")
    assert set(_rows(page)) == {"1", "2"}

    call = {
        "type": "tool_called",
        "payload": {"tool": "lookup", "args": {"q": "x"}},
        "metadata": {"tool_name": "lookup", "call_id": "live-1"},
    }
    _append(server.data_dir, sid, call)
    page.wait(lambda d: " open " in _rows(page).get("3", ""))
    page.wait(lambda d: page.css('[data-stat="open calls"] .stat-value').text == "1")

    result = {
        "type": "tool_result",
        "payload": {"tool": "lookup", "result": [1, 2, 3]},
        "metadata": {"tool_name": "lookup", "call_id": "live-1", "duration_ms": 1234},
    }
    answer = {
        "type": "llm_response",
        "payload": {"model": "m", "content": "done"},
        "metadata": {"model": "m", "tokens_in": 100, "tokens_out": 20},
    }
    _append(server.data_dir, sid, result, answer)
    page.wait(lambda d: set(_rows(page)) == {"1", "2", "3", "4", "5"})
    rows = _rows(page)
    assert " open " not in rows["3"] and "→ #4" in rows["3"]  # the result closed the call
    assert "lookup → 3 items, 34 B, in 1.23s, call #3" in rows["4"]
    assert page.css('[data-stat="open calls"] .stat-value').text == "0"
    assert page.css('[data-stat="tokens in"] .stat-value').text == "100"
    assert page.css("#row-count").text == "5 events"


def test_resumes_after_the_server_restarts(page: Page, live: tuple[UiServer, str]) -> None:
    server, sid = live
    page.base = server.base
    page.open(f"/sessions/{sid}")
    page.wait(lambda d: page.css("#live").text == "● live")
    port = server.base.rsplit(":", 1)[1]
    page.allowed_errors.append("net::ERR_CONNECTION_REFUSED")  # its retries while down
    assert server.stop() == 0  # SIGTERM: the server ends its live follows and exits
    page.wait(lambda d: page.css("#live").text == "○ reconnecting")
    # Written while no server runs; the page must pick it up once one is back.
    _append(server.data_dir, sid, {"type": "user_message", "payload": "while down"})
    again = UiServer(server.data_dir, "--port", port)
    try:
        page.wait(lambda d: set(_rows(page)) == {"1", "2", "3"}, timeout=20)
        assert "while down" in _rows(page)["3"]
        assert page.css("#live").text == "● live"
        _append(server.data_dir, sid, {"type": "user_message", "payload": "after"})
        page.wait(lambda d: set(_rows(page)) == {"1", "2", "3", "4"})
    finally:
        assert again.stop() == 0

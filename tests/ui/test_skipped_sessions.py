"""The sessions page names the sessions the server passed over, and why.

`GET /v1/sessions` says which sessions a listing passed over (`skipped`: a session file
the server could not read, with a reason). The page showed only the sessions it got, so a
user browsing the UI saw a list silently missing a run. It now shows a notice above the
table: each id passed over and the answer's reason, as text (a reason quotes what the
damaged file holds, and that may be anything: it is never parsed as HTML).

A real data directory, damaged as a crash or a hand edit leaves it, `agentstore ui` as a
subprocess, and Debian's headless Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

import agentstore
from tests.ui.browser import UiServer
from tests.ui.conftest import Page

HOSTILE_ID = '<img src=x onerror="window.__pwned = 7; alert(7)"><script>alert(8)</script>'


async def _seed(data_dir: Path, ids: list[str]) -> None:
    async with agentstore.open(data_dir) as store:
        for sid in ids:
            await store.create_session(session_id=sid, name=f"run {sid}")


def _cut(data_dir: Path, sid: str) -> None:
    """Cut the session file of `sid` short, as a crash mid-write or a full disk leaves it."""
    bad = data_dir / "sessions" / f"{sid}.json"
    bad.write_bytes(bad.read_bytes()[:17])


def _server(data_dir: Path) -> Iterator[UiServer]:
    server = UiServer(data_dir)
    try:
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """Four sessions; one file cut short, one naming another (hostile) session id."""
    data = tmp_path_factory.mktemp("ui-skipped") / "agent-data"
    anyio.run(_seed, data, ["s-old", "s-mid", "s-evil", "s-new"])
    _cut(data, "s-mid")
    # What the file says is quoted in the reason the server gives.
    (data / "sessions" / "s-evil.json").write_bytes(orjson.dumps({"id": HOSTILE_ID}))
    yield from _server(data)


@pytest.fixture(scope="module")
def all_damaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """Seven sessions, every file cut short."""
    data = tmp_path_factory.mktemp("ui-skipped-all") / "agent-data"
    ids = [f"s-{n}" for n in range(7)]
    anyio.run(_seed, data, ids)
    for sid in ids:
        _cut(data, sid)
    yield from _server(data)


def _notice(page: Page) -> Any:
    return page.js(
        "const d = document.getElementById('skipped-sessions');"
        "return d && {open: d.open, summary: d.querySelector('summary').textContent,"
        " items: [...d.querySelectorAll('li')].map((li) => [li.dataset.id,"
        "  li.querySelector('.skipped-id').textContent,"
        "  li.querySelector('.skipped-reason').textContent]),"
        " elements: d.querySelectorAll('*').length}"
    )


def _listed(page: Page) -> list[str]:
    return list(
        page.js(
            "return [...document.querySelectorAll('#sessions-table tbody tr[data-id]')]"
            ".map((row) => row.dataset.id)"
        )
    )


def test_sessions_passed_over_are_named_with_the_reason(page: Page, damaged: UiServer) -> None:
    answer = httpx.get(f"{damaged.base}/v1/sessions", params={"summary": 1}, timeout=10).json()
    reasons = {s["session_id"]: s["reason"] for s in answer["skipped"]}
    assert set(reasons) == {"s-mid", "s-evil"}
    assert HOSTILE_ID in reasons["s-evil"]  # the file's text, quoted by the server

    page.base = damaged.base
    page.open("/", ready="#skipped-sessions")
    page.wait(lambda d: _listed(page) == ["s-new", "s-old"])
    notice = _notice(page)
    assert notice["open"] is True
    assert notice["summary"] == "2 sessions could not be read and are not listed"
    assert sorted(notice["items"]) == sorted([sid, sid, reasons[sid]] for sid in reasons)
    # details, summary, ul, and an li with two spans a session: nothing the text made.
    assert notice["elements"] == 1 + 1 + 2 * 3
    assert page.js("return window.__dialogs") == []
    assert page.js("return window.__added") == []
    assert page.js("return window.__pwned") is None
    assert page.css("#page-status").text == "Page 1 · 2 sessions"
    page.screenshot("sessions-skipped")


def test_a_page_with_only_unreadable_sessions_says_so(page: Page, all_damaged: UiServer) -> None:
    page.base = all_damaged.base
    page.open("/", ready="#skipped-sessions")
    notice = _notice(page)
    # Seven is a long list: folded under its count, every id still there.
    assert notice["open"] is False
    assert notice["summary"] == "7 sessions could not be read and are not listed"
    assert sorted(item[1] for item in notice["items"]) == [f"s-{n}" for n in range(7)]
    assert all("is not a valid session file" in item[2] for item in notice["items"])
    assert page.css("#sessions-table tbody td.empty").text == "No session here could be read."
    page.css("#skipped-sessions summary").click()
    page.wait(lambda d: page.css("#skipped-sessions li .skipped-reason").is_displayed())


def test_no_notice_when_nothing_was_passed_over(page: Page) -> None:
    page.open("/", ready="#sessions-table tbody tr[data-id]")
    assert page.all("#skipped-sessions") == []

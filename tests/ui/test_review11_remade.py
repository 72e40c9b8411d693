"""Review 11 (web UI): a session deleted and made again under its id while a page follows it.

The page follows its session live and, after a dropped connection (a server restart),
follows again from the event after the last one it has. A session deleted and made again
under its id meanwhile (a script that resets a session by id) was resumed from that
number in the other session's events: the page showed the first one's events and then the
second's, as one session. The page now sends the session's creation time with every
follow, and the server refuses a follow of another session under that id: the page says
the live stream ended and shows nothing of the other.
"""

from __future__ import annotations

from pathlib import Path

import anyio

import agentstore
from tests.ui.browser import UiServer
from tests.ui.conftest import Page
from tests.ui.test_live import _rows, live  # noqa: F401 - the fixture


async def _make_again(data_dir: Path, sid: str) -> None:
    async with agentstore.open(data_dir) as store:
        await store.delete_session(sid)
        await store.create_session(session_id=sid, name="another")
        for n in range(4):
            await store.append(sid, agentstore.user_message(f"other {n}"))


def test_a_session_made_again_is_not_resumed_into(
    page: Page,
    live: tuple[UiServer, str],  # noqa: F811
) -> None:
    server, sid = live
    page.base = server.base
    page.open(f"/sessions/{sid}")
    page.wait(lambda d: page.css("#live").text == "● live")
    assert set(_rows(page)) == {"1", "2"}
    port = server.base.rsplit(":", 1)[1]
    page.allowed_errors.append("net::ERR_CONNECTION_REFUSED")  # its retries while down
    page.allowed_errors.append("404 (Not Found)")  # the refused follow
    assert server.stop() == 0
    page.wait(lambda d: page.css("#live").text == "○ reconnecting")
    anyio.run(_make_again, server.data_dir, sid)
    again = UiServer(server.data_dir, "--port", port)
    try:
        page.wait(lambda d: "not found" in page.css("#live").text, timeout=20)
        # The old code: rows 3 and 4 of the other session under the first one's 1 and 2.
        assert set(_rows(page)) == {"1", "2"}
        assert not any("other" in row for row in _rows(page).values())
    finally:
        assert again.stop() == 0

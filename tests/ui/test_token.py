"""The UI on a server that wants a token: it asks for it, sends it, and follows live with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

import agentstore
from tests.ui.conftest import Page
from tests.ui.seed import flight_run

TOKEN = "ui-test-token-0123456789abcdef"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`agentstore serve` with --token-file over one session; yields (base URL, session id)."""

    async def create() -> str:
        async with agentstore.open(tmp_path / "agent-data") as store:
            return await flight_run(store)

    sid = anyio.run(create)
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "agentstore_cli", "serve", "--no-grpc", "--http-port", "0"),
            *("--data-dir", str(tmp_path / "agent-data"), "--token-file", str(token_file)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        base = json.loads(proc.stdout.readline())["listening"]["http"]
        httpx.get(f"{base}/healthz", timeout=30).raise_for_status()
        yield base, sid
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_asks_for_the_token_then_works_with_it(
    page: Page, guarded: tuple[str, str], tmp_path: Path
) -> None:
    base, sid = guarded
    page.base = base
    page.allowed_errors.append("401 (Unauthorized)")  # the requests before the token
    page.open(f"/sessions/{sid}#seq-6", ready="#token-form")
    page.css("#token-input").send_keys("wrong-token-wrong-token\n")
    page.wait(lambda d: "was refused" in page.css("#token-form").text)
    page.css("#token-input").send_keys(TOKEN + "\n")
    page.wait_css("body[data-loaded]")
    page.wait(lambda d: page.js("return document.querySelectorAll('#timeline .row').length") == 13)
    page.wait(lambda d: '"sequence_number": 6,' in page.css("#inspector-json").text)

    # Live with the token: an event appended through the API shows up.
    page.wait(lambda d: page.css("#live").text == "● live")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    httpx.post(
        f"{base}/v1/sessions/{sid}/events",
        json={"type": "user_message", "payload": {"content": "live with a token"}},
        headers=headers,
        timeout=10,
    ).raise_for_status()
    page.wait(lambda d: page.css("#row-count").text == "14 events")

    # The export links send the token too (a plain link could not).
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    page.css("#export-json").click()
    saved = downloads / f"{sid}.json"
    page.wait(lambda d: saved.exists() and saved.stat().st_size > 0)
    expected = httpx.get(f"{base}/v1/sessions/{sid}/export", headers=headers, timeout=10).json()
    assert json.loads(saved.read_text()) == expected

    # The sessions page of the same tab needs no second prompt.
    page.open("/", ready=f'tr[data-id="{sid}"]')

"""A session's page in a real browser: timeline, pairing, inspector, keyboard, filters,
state at any step, charts, compare and export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from selenium.webdriver.common.keys import Keys

from tests.ui.conftest import Page
from tests.ui.seed import Seeded


def _rows(page: Page) -> list[dict[str, str]]:
    """The timeline rows in the DOM: seq, classes and text (one script call)."""
    return list(
        page.js(
            "return [...document.querySelectorAll('#timeline .row')].map((r) => ({"
            "seq: r.dataset.seq, cls: r.className, text: r.innerText.replace(/\\n/g, ' ')}))"
        )
    )


def _row(page: Page, seq: int) -> dict[str, str]:
    return next(r for r in _rows(page) if r["seq"] == str(seq))


def _selected(page: Page) -> str | None:
    return page.js(
        "const r = document.querySelector('#timeline .row.selected'); return r && r.dataset.seq"
    )


def _open_flight(page: Page, seeded: Seeded, suffix: str = "") -> None:
    page.open(f"/sessions/{seeded.flight}{suffix}")
    page.wait(lambda d: len(_rows(page)) == 13)


def test_timeline_rows_have_the_cli_summaries_and_pairs(page: Page, seeded: Seeded) -> None:
    _open_flight(page, seeded)
    result = _row(page, 6)
    assert "t-tool_result" in result["cls"] and "pair" in result["cls"]
    assert "search_flights → 2 items, 152 B, in 420ms, call #5" in result["text"]
    assert result["text"].endswith("← #5")
    assert _row(page, 5)["text"].endswith("→ #6")
    assert 'search_flights(from="BER", to="MUC")' in _row(page, 5)["text"]
    error = _row(page, 4)
    assert "t-error" in error["cls"]
    assert "TimeoutError: flight API timed out (recoverable) · call #3" in error["text"]
    llm = _row(page, 11)
    assert "gpt-4o-mini · 412 in · 58 out · $0.000097" in llm["text"]
    # The last call has no result: highlighted as open, in the totals too.
    last = _row(page, 13)
    assert "open" in last["cls"].split() and last["text"].endswith("open")
    assert page.css('[data-stat="open calls"] .stat-value').text == "1"
    assert page.css('[data-stat="tokens in"] .stat-value').text == "412"
    assert page.css('[data-stat="cost"] .stat-value').text == "$0.000097"


def test_inspector_keyboard_and_shareable_url(page: Page, seeded: Seeded) -> None:
    _open_flight(page, seeded)
    page.css('#timeline .row[data-seq="5"]').click()
    page.wait(lambda d: '"sequence_number": 5,' in page.css("#inspector-json").text)
    assert page.driver.current_url.endswith(f"/sessions/{seeded.flight}#seq-5")
    assert "partner" in _row(page, 6)["cls"]  # its result lights up with it
    assert page.css(".pair-line").text == "Result: #6 · took 420ms"
    event = json.loads(page.css("#inspector-json").text)
    assert event["payload"] == {"tool": "search_flights", "args": {"from": "BER", "to": "MUC"}}
    page.screenshot("session-timeline")
    body = page.css("body")
    body.send_keys("j")
    page.wait(lambda d: _selected(page) == "6")
    assert page.driver.current_url.endswith("#seq-6")
    body.send_keys("k")
    body.send_keys("k")
    page.wait(lambda d: _selected(page) == "4")
    # The URL of an event opens the page on it.
    page.open(f"/sessions/{seeded.flight}#seq-9")
    page.wait(lambda d: _selected(page) == "9")
    assert '"sequence_number": 9,' in page.css("#inspector-json").text
    # An open call says so in the inspector.
    page.css('#timeline .row[data-seq="13"]').click()
    page.wait(lambda d: page.css(".pair-line").text == "Open call: no result yet.")


def test_id_prefix_url_opens_the_session(page: Page, seeded: Seeded) -> None:
    page.allowed_errors.append(f"/v1/sessions/{seeded.flight[:6]} ")  # the exact-id lookup
    page.open(f"/sessions/{seeded.flight[:6]}#seq-2")
    assert page.driver.current_url.endswith(f"/sessions/{seeded.flight}#seq-2")
    page.wait(lambda d: _selected(page) == "2")


def test_copy_puts_the_event_json_on_the_clipboard(page: Page, seeded: Seeded) -> None:
    page.driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"], "origin": page.base},
    )
    _open_flight(page, seeded, "#seq-11")
    page.wait(lambda d: _selected(page) == "11")
    page.css("#copy-json").click()
    page.wait(lambda d: page.css("#copy-status").text == "Copied.")
    copied = page.driver.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0]('ERR ' + e))"
    )
    event = json.loads(copied)
    assert event["sequence_number"] == 11
    assert event["metadata"]["tokens_in"] == 412


def test_filters_by_type_time_and_payload_text(page: Page, seeded: Seeded) -> None:
    _open_flight(page, seeded)
    page.css('#type-filters [data-type="tool_called"]').click()
    page.wait(lambda d: page.css("#row-count").text == "9 of 13 events")
    assert all("t-tool_called" not in r["cls"] for r in _rows(page))
    page.css('#type-filters [data-type="tool_called"]').click()
    page.wait(lambda d: len(_rows(page)) == 13)

    page.css("#payload-search").send_keys("rank_by_price")
    page.wait(lambda d: [r["seq"] for r in _rows(page)] == ["8", "9"])
    page.css("#payload-search").clear()
    page.css("#payload-search").send_keys("EW 8040")  # inside result lists and answers
    page.wait(lambda d: [r["seq"] for r in _rows(page)] == ["6", "9", "11", "12", "13"])
    page.css("#payload-search").send_keys(Keys.CONTROL, "a", Keys.DELETE)
    page.wait(lambda d: len(_rows(page)) == 13)

    since = page.css("#filter-since")
    since.send_keys("2999-01-01 00:00:00\n")
    page.wait(lambda d: len(_rows(page)) == 0)
    since.clear()
    since.send_keys("not a time\n")
    page.wait(lambda d: "invalid" in (since.get_attribute("class") or ""))
    page.wait(lambda d: len(_rows(page)) == 13)
    until = page.css("#filter-until")
    until.send_keys("2000-01-01T00:00:00Z\n")
    page.wait(lambda d: len(_rows(page)) == 0)


def test_state_slider_shows_state_and_changes(page: Page, seeded: Seeded) -> None:
    page.open(f"/sessions/{seeded.flight}?tab=state#seq-9")
    page.wait_css('.state-view[data-step="9"][data-loading="false"]')
    state = json.loads(page.css("#state-json").text)
    assert state["version"] == 9 and state["data"]["tool_result"]["tool"] == "rank_by_price"
    paths = [li.get_attribute("data-path") for li in page.all("#state-diff li")]
    assert "version" in paths and "data.tool_result.tool" in paths
    closed = [p for p in paths if p.startswith("open_calls.")]
    assert len(closed) == 1  # the result closed the call of #8
    page.screenshot("session-state")
    page.css("#state-slider").send_keys(Keys.ARROW_LEFT)
    page.wait_css('.state-view[data-step="8"][data-loading="false"]')
    assert json.loads(page.css("#state-json").text)["version"] == 8
    assert page.driver.current_url.endswith("?tab=state#seq-8")
    step = page.css("#state-step")
    step.clear()
    step.send_keys("0\n")
    page.wait_css('.state-view[data-step="0"][data-loading="false"]')
    assert page.css("#state-diff").text == "The empty state."
    assert json.loads(page.css("#state-json").text)["event_count"] == 0


def test_charts_are_svg_drawn_from_the_events(page: Page, seeded: Seeded) -> None:
    page.open(f"/sessions/{seeded.flight}?tab=charts")
    page.wait_css("#chart-types")
    bars = page.js(
        "return Object.fromEntries([...document.querySelectorAll('#chart-types rect')]"
        ".map((r) => [r.dataset.type, +r.getAttribute('width')]))"
    )
    assert set(bars) == {
        "user_message",
        "plan_created",
        "tool_called",
        "error",
        "tool_result",
        "state_updated",
        "llm_request",
        "llm_response",
    }
    assert bars["tool_called"] > bars["tool_result"] > bars["error"]  # 4, 2, 1 events
    durations = page.js(
        "return Object.fromEntries([...document.querySelectorAll('#chart-durations rect')]"
        ".map((r) => [r.dataset.seq, +r.getAttribute('height')]))"
    )
    assert set(durations) == {"6", "9"} and durations["6"] > 10 * durations["9"]  # 420 vs 35 ms
    assert len(page.all("#chart-tokens path.line")) == 2
    assert len(page.all("#chart-cost path.line")) == 1
    page.screenshot("session-charts")


def test_compare_a_fork_with_its_parent(page: Page, seeded: Seeded) -> None:
    page.open(f"/sessions/{seeded.fork}")
    page.css("#compare-parent").click()
    page.wait_css("body[data-loaded]")
    note = page.css("#divergence")
    assert note.get_attribute("data-diverge") == "8"
    assert note.text == (
        "B was forked from A at #7. They agree for 7 events and diverge at step #8."
    )
    deltas = page.js(
        "return Object.fromEntries([...document.querySelectorAll('#compare-totals tbody tr')]"
        ".map((r) => [r.dataset.row, [...r.cells].slice(1).map((c) => c.innerText)]))"
    )
    assert deltas["Tokens in"] == ["412", "1,800", "+1,388"]
    assert deltas["Tokens out"] == ["58", "240", "+182"]
    assert deltas["Events"] == ["6", "3", "\N{MINUS SIGN}3"]
    assert deltas["Cost"][2].startswith("+$")
    first_diverged = page.css('#compare-events tr[data-index="8"]').text
    assert (
        "tool_called rank_by_price" in first_diverged
        and "llm_request gpt-4o-mini" in first_diverged
    )
    page.screenshot("compare")


def test_export_is_the_same_json_as_the_cli(
    page: Page, seeded_dir: tuple[Path, Seeded], tmp_path: Path
) -> None:
    data_dir, seeded = seeded_dir
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    page.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    _open_flight(page, seeded)
    page.css("#export-json").click()
    saved = downloads / f"{seeded.flight}.json"
    page.wait(lambda d: saved.exists() and saved.stat().st_size > 0)
    cli = subprocess.run(
        [sys.executable, "-m", "agentstore_cli", "export", seeded.flight],
        capture_output=True,
        check=True,
        text=True,
        env={**os.environ, "AGENTSTORE_DATA_DIR": str(data_dir)},
    )
    expected = json.loads(cli.stdout)
    assert json.loads(saved.read_text()) == expected
    assert len(expected["events"]) == 13
    # "Events only" is the bare array of the same events.
    href = page.css("#export-events").get_attribute("href")
    assert href == f"{page.base}/v1/sessions/{seeded.flight}/export"
    assert httpx.get(href, timeout=10).json() == expected["events"]

"""The sessions page in a real browser: order, columns, search, labels, paging, links."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Page
from tests.ui.seed import Seeded


def _ids(page: Page) -> list[str]:
    # One script call: the table may be re-rendered between two WebDriver calls.
    return list(
        page.js(
            "return [...document.querySelectorAll('#sessions-table tbody tr[data-id]')]"
            ".map((row) => row.dataset.id)"
        )
    )


def _wait_ids(page: Page, expected: list[str]) -> None:
    page.wait(lambda d: _ids(page) == expected)


def _cells(page: Page, sid: str) -> list[str]:
    return list(
        page.js(
            "return [...document.querySelector(`tr[data-id='${arguments[0]}']`).cells]"
            ".map((cell) => cell.innerText)",
            sid,
        )
    )


def test_newest_first_with_the_columns(page: Page, seeded: Seeded) -> None:
    page.open("/", ready="#sessions-table tbody tr[data-id]")
    newest_first = [seeded.hostile, seeded.fork, seeded.flight, *reversed(seeded.others)]
    _wait_ids(page, newest_first)
    # events, tokens in, tokens out, cost, errors, open calls (as the store counts them)
    cells = _cells(page, seeded.flight)
    assert cells[3:9] == ["13", "412", "58", "$0.000097", "1", "1"]
    assert cells[1].startswith("flight-search\n" + seeded.flight)
    assert "agent=travel" in cells[2] and "env=demo" in cells[2]
    assert cells[9].endswith("ago")
    assert f"fork of {seeded.flight} at #7" in _cells(page, seeded.fork)[1]
    page.screenshot("sessions")


def test_search_by_name_and_id_prefix_and_label_filter(page: Page, seeded: Seeded) -> None:
    page.open("/", ready="#sessions-table tbody tr[data-id]")
    search = page.css("#session-search")
    search.send_keys("worker-1")
    _wait_ids(page, [seeded.others[1]])
    assert page.driver.current_url.endswith("/?q=worker-1")
    search.clear()
    search.send_keys(seeded.flight[:8])
    _wait_ids(page, [seeded.flight])
    search.clear()
    search.send_keys("no such thing")
    page.wait(lambda d: page.css("td.empty").text == "No session matches.")
    search.clear()
    search.send_keys(" ")  # an input event with an empty search: every session again
    labels = page.css("#label-filter")
    labels.send_keys("env=prod\n")
    _wait_ids(page, [seeded.others[2], seeded.others[1]])
    labels.clear()
    labels.send_keys("env=demo, agent=travel\n")
    _wait_ids(page, [seeded.fork, seeded.flight])


def test_cursor_paging_forward_and_back(page: Page, seeded: Seeded) -> None:
    page.open("/?limit=2", ready="#sessions-table tbody tr[data-id]")
    _wait_ids(page, [seeded.hostile, seeded.fork])
    assert page.css("#page-newer").get_attribute("disabled") is not None
    page.css("#page-older").click()
    _wait_ids(page, [seeded.flight, seeded.others[2]])
    page.css("#page-older").click()
    _wait_ids(page, [seeded.others[1], seeded.others[0]])
    assert page.css("#page-older").get_attribute("disabled") is not None
    # The URL holds the page: reloading it shows the same sessions.
    page.driver.refresh()
    _wait_ids(page, [seeded.others[1], seeded.others[0]])
    page.css("#page-newer").click()
    _wait_ids(page, [seeded.flight, seeded.others[2]])
    page.css("#page-newer").click()
    _wait_ids(page, [seeded.hostile, seeded.fork])


def test_links_to_a_session_and_to_compare(page: Page, seeded: Seeded) -> None:
    page.open("/", ready="#sessions-table tbody tr[data-id]")
    compare = page.css("#compare-selected")
    for sid in (seeded.flight, seeded.fork):
        page.css(f'tr[data-id="{sid}"] input.pick').click()
    page.wait(lambda d: compare.is_enabled())
    compare.click()
    page.wait(lambda d: "/compare?" in d.current_url)
    assert f"a={seeded.flight}" in page.driver.current_url or f"b={seeded.flight}" in (
        page.driver.current_url
    )
    page.wait_css("#divergence")
    page.open("/", ready="#sessions-table tbody tr[data-id]")
    page.css(f'tr[data-id="{seeded.flight}"] a.session-link').click()
    page.wait(lambda d: d.current_url.endswith(f"/sessions/{seeded.flight}"))
    page.wait_css("body[data-loaded]")


def test_theme_switch_is_remembered(page: Page, driver: Any) -> None:
    page.open("/", ready="#sessions-table tbody tr[data-id]")
    before = page.js("return document.documentElement.dataset.theme")
    background = page.js("return getComputedStyle(document.body).backgroundColor")
    page.css("#theme-toggle").click()
    after = "dark" if before == "light" else "light"
    page.wait(lambda d: page.js("return document.documentElement.dataset.theme") == after)
    assert page.js("return getComputedStyle(document.body).backgroundColor") != background
    page.open("/", ready="#sessions-table tbody tr[data-id]")
    assert page.js("return document.documentElement.dataset.theme") == after
    if after == "dark":
        page.screenshot("sessions-dark")
    page.css("#theme-toggle").click()  # back, for the other tests' screenshots
    page.wait(lambda d: page.js("return document.documentElement.dataset.theme") == before)

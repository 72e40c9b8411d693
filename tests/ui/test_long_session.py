"""A long session: the timeline keeps only the rows in view in the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ui.browser import UiServer
from tests.ui.conftest import Page
from tests.ui.seed import seed_long

EVENTS = 4_000


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, str]]:
    data_dir = tmp_path_factory.mktemp("long") / "agent-data"
    sid = seed_long(data_dir, EVENTS)
    server = UiServer(data_dir)
    try:
        yield server, sid
    finally:
        assert server.stop() == 0


def _dom_rows(page: Page) -> list[str]:
    return list(
        page.js("return [...document.querySelectorAll('#timeline .row')].map((r) => r.dataset.seq)")
    )


def test_a_long_timeline_is_virtualised(page: Page, long_run: tuple[UiServer, str]) -> None:
    server, sid = long_run
    page.base = server.base
    page.open(f"/sessions/{sid}")
    assert page.css("#row-count").text == f"{EVENTS:,} events".replace(",", "")
    rows = _dom_rows(page)
    assert 10 < len(rows) < 100 and rows[0] == "1"
    # An event's URL opens the page on it, even when it is in the last page loaded.
    page.open(f"/sessions/{sid}#seq-3500")
    page.wait(
        lambda d: (
            page.js("return document.querySelector('#timeline .row.selected')?.dataset.seq")
            == "3500"
        )
    )
    assert '"sequence_number": 3500,' in page.css("#inspector-json").text
    # Jumping to an event near the end scrolls there and draws only what is in view.
    page.js("location.hash = '#seq-3990'")
    page.wait(
        lambda d: (
            page.js("return document.querySelector('#timeline .row.selected')?.dataset.seq")
            == "3990"
        )
    )
    rows = _dom_rows(page)
    assert len(rows) < 100 and "3990" in rows and "1" not in rows
    # Every event is there for the filters: a search finds one near the end.
    page.css("#payload-search").send_keys('query 999"')
    page.wait(lambda d: _dom_rows(page) == ["3999"])
    # The charts get every step too.
    page.css("#tab-charts").click()
    assert page.css("#chart-types").text.count(f"{EVENTS // 4:,}") == 4


def test_state_at_a_late_step(page: Page, long_run: tuple[UiServer, str]) -> None:
    server, sid = long_run
    page.base = server.base
    page.open(f"/sessions/{sid}?tab=state#seq-3998")
    page.wait_css('.state-view[data-step="3998"][data-loading="false"]')
    assert '"version": 3998' in page.css("#state-json").text
    assert page.css("#state-slider").get_attribute("max") == str(EVENTS)

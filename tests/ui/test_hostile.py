"""Hostile payloads, names and labels are shown as text and never run."""

from __future__ import annotations

from tests.ui.conftest import Page
from tests.ui.seed import HOSTILE_STRINGS, Seeded


def _assert_inert(page: Page, path: str) -> None:
    assert page.js("return window.__dialogs") == []  # no alert, confirm or prompt
    assert page.js("return window.__added") == []  # no script, iframe or image added
    assert page.js("return window.__pwned") is None
    assert page.js("return document.scripts.length") == 1  # our one module
    assert page.js("return location.protocol") == "http:"
    assert page.js("return location.pathname") == path
    links = page.js("return [...document.querySelectorAll('a[href]')].map((a) => a.href)")
    assert all(link.startswith("http://127.0.0.1:") for link in links), links


def test_hostile_name_and_labels_on_the_sessions_page(page: Page, seeded: Seeded) -> None:
    page.open("/", ready=f'tr[data-id="{seeded.hostile}"]')
    row = page.css(f'tr[data-id="{seeded.hostile}"]')
    assert row.find_element("css selector", "a.session-link").text == (
        "<img src=x onerror=alert('name')>"
    )
    assert "x=<script>alert(1)</script>" in row.text
    _assert_inert(page, "/")


def test_hostile_payloads_are_text_in_timeline_and_inspector(page: Page, seeded: Seeded) -> None:
    path = f"/sessions/{seeded.hostile}"
    page.open(path)
    page.wait(lambda d: page.css("#row-count").text == "9 events")
    texts = page.js(
        "return [...document.querySelectorAll('#timeline .row .summary')].map((s) => s.textContent)"
    )
    for text in HOSTILE_STRINGS[:-1]:
        assert text in texts
    # A right-to-left override would reorder what follows it: it is shown escaped.
    assert "\\u202eevil-bidi-override" in texts
    assert '{"html":"<b>bold?</b><iframe src=\'javascript:alert(6)\'></iframe>"}' in texts
    assert len(page.all("#timeline b, #timeline iframe, #timeline img, #inspector iframe")) == 0

    for seq in range(1, 10):  # inspect each one (j moves to the next event)
        page.css("body").send_keys("j")
        page.wait(
            lambda d, seq=seq: f'"sequence_number": {seq},' in page.css("#inspector-json").text
        )
        for link in page.all("#inspector a"):
            assert link.get_attribute("href").startswith("http://127.0.0.1:")
        _assert_inert(page, path)

    # The 300,000-character string is cut in the inspector until asked for, and the deep
    # nesting (200 levels) is shown whole.
    page.open(f"{path}#seq-8")
    page.wait_css("#show-all")
    assert len(page.css("#inspector-json").get_attribute("textContent")) == 200_000
    page.css("#show-all").click()
    page.wait(lambda d: len(page.css("#inspector-json").get_attribute("textContent")) > 300_000)
    page.open(f"{path}#seq-9")
    page.wait(lambda d: '"bottom"' in page.css("#inspector-json").get_attribute("textContent"))
    _assert_inert(page, path)
    page.screenshot("hostile")


def test_content_security_policy_is_sent_with_the_page(page: Page, seeded: Seeded) -> None:
    import httpx

    response = httpx.get(f"{page.base}/sessions/{seeded.hostile}", timeout=10)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "object-src 'none'" in csp
    assert response.headers["content-type"].startswith("text/html")

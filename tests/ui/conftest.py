"""Fixtures of the web UI tests: a seeded store, `agentstore ui` serving it, headless Chromium.

The browser and the server are started once per test run (a second each); every test
opens its own page. A test fails if the page logged a JavaScript error or a CSP
violation, and every page gets a watcher (installed before the page's own script) that
records alert dialogs and any script, iframe, image or object element ever added.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.browser import UiServer, missing, start_chromium
from tests.ui.seed import Seeded, seed

# Installed by the DevTools protocol before any script of the page runs.
WATCHER = """
window.__dialogs = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (msg) => { window.__dialogs.push(String(msg)); };
}
window.__added = [];
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType !== 1) continue;
    const found = [n, ...n.querySelectorAll("script,iframe,img,object,embed")];
    for (const el of found) {
      if (el.matches('script[type="module"][src="/app.js"]') && !el.closest("body")) continue;
      if (/^(SCRIPT|IFRAME|IMG|OBJECT|EMBED|image)$/i.test(el.nodeName)) {
        window.__added.push(el.outerHTML.slice(0, 200));
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""

SCREENSHOTS_ENV = "AGENTSTORE_UI_SCREENSHOTS"


def _need_browser() -> None:
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the web UI tests need a browser in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """A data directory with the demo sessions (never written to by the tests)."""
    data = tmp_path_factory.mktemp("ui") / "agent-data"
    return data, seed(data)


@pytest.fixture(scope="session")
def seeded(seeded_dir: tuple[Path, Seeded]) -> Seeded:
    """The ids of the demo sessions."""
    return seeded_dir[1]


@pytest.fixture(scope="session")
def ui_server(seeded_dir: tuple[Path, Seeded]) -> Iterator[UiServer]:
    """`agentstore ui` over the demo sessions."""
    _need_browser()
    server = UiServer(seeded_dir[0])
    try:
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (fresh profile) for the whole run."""
    _need_browser()
    drv = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCHER})
    try:
        yield drv
    finally:
        drv.quit()


class Page:
    """The browser, pointed at one server, with waits and checks the tests share."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots
        self.allowed_errors: list[str] = []

    def open(self, path: str, ready: str = "body[data-loaded]") -> None:
        """Load `path` and wait until the CSS selector `ready` matches."""
        from selenium.common.exceptions import TimeoutException

        self.driver.get(self.base + path)
        if ready:
            try:
                self.wait_css(ready, timeout=20)
            except TimeoutException:
                # Say what the page shows instead: an error banner, console errors.
                shown = self.js("return document.querySelector('main')?.innerText.slice(0, 500)")
                raise AssertionError(
                    f"{path} never matched {ready!r}; the page shows {shown!r}; "
                    f"console: {self.driver.get_log('browser')}"
                ) from None

    def wait(self, condition: Any, timeout: float = 10) -> Any:
        """Wait for `condition(driver)` to be truthy and return it."""
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def wait_css(self, selector: str, timeout: float = 10) -> Any:
        """Wait for an element matching `selector` and return it."""
        from selenium.webdriver.common.by import By

        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, selector), timeout)

    def css(self, selector: str) -> Any:
        """Return the first element matching `selector`."""
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        """Return every element matching `selector`."""
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def js(self, script: str, *args: Any) -> Any:
        """Run `script` in the page and return its value."""
        return self.driver.execute_script(script, *args)

    def screenshot(self, name: str) -> Path:
        """Save a PNG of the window (into docs/images when $AGENTSTORE_UI_SCREENSHOTS is set)."""
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def errors(self) -> list[str]:
        """Return (and clear) the console errors other than the allowed ones."""
        out = []
        for entry in self.driver.get_log("browser"):
            message = entry["message"]
            if entry["level"] == "SEVERE" and not any(a in message for a in self.allowed_errors):
                out.append(message)
        return out


@pytest.fixture
def page(driver: Any, ui_server: UiServer, tmp_path: Path) -> Iterator[Page]:
    """A page of the UI over the demo sessions; fails the test on a console error."""
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    driver.get_log("browser")  # drop what earlier tests left
    view = Page(driver, ui_server.base, shots)
    yield view
    driver.get("about:blank")  # closes the page's live stream before the next test
    assert view.errors() == []

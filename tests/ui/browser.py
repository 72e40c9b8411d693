"""Start Debian's headless Chromium through chromedriver, as issue 15 asks, for tests and bench."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Not in the list, but needed here: /dev/shm is small in containers.
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
    # performance.memory with real figures (the bench reads the JS heap).
    "--enable-precise-memory-info",
]


def missing() -> str | None:
    """Return why the browser cannot run here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(Path(path).name)):
            return f"{path} is missing: apt-get install -y chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: pip install -e '.[dev]'"
    return None


def start_chromium(user_data_dir: Path) -> Any:
    """Start a headless Chromium with a fresh profile in `user_data_dir`; return the driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)

"""Debian's headless Chromium through chromedriver, and `agentstore ui`, for tests and bench."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

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


class UiServer:
    """`agentstore ui --no-browser` running in a subprocess."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.log = data_dir.parent / f"{data_dir.name}-ui.log"  # the server's stderr
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "agentstore_cli", "ui", "--data-dir", str(data_dir)),
                    *("--port", "0", "--no-browser", *args),
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                text=True,
            )
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()  # printed once the port is bound
            if not line.startswith("agentstore ui: http://127.0.0.1:"):
                raise AssertionError(
                    f"agentstore ui printed {line!r}; its log: {self.log.read_text()[-2000:]}"
                )
            self.page = line.split()[2]
            self.base = "/".join(self.page.split("/", 3)[:3])
            httpx.get(f"{self.base}/healthz", timeout=30).raise_for_status()
        except BaseException:
            self.proc.kill()
            self.stop()
            raise

    def stop(self) -> int:
        """Stop the server with SIGTERM; return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

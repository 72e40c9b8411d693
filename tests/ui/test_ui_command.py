"""`agentstore ui`: serve plus the browser opened on the right page; clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.ui.browser import UiServer
from tests.ui.seed import Seeded

# Stands in for the user's browser: Python's webbrowser runs $BROWSER with the URL.
RECORDER = 'import sys; open(sys.argv[1], "w").write(sys.argv[2])'


def _ui(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentstore_cli", "ui", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )


def test_opens_the_browser_on_the_session_page(
    seeded_dir: tuple[Path, Seeded], tmp_path: Path
) -> None:
    data_dir, seeded = seeded_dir
    opened = tmp_path / "opened.txt"
    browser = f"{sys.executable} -c '{RECORDER}' {opened} %s"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentstore_cli", "ui", seeded.flight[:8], "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "BROWSER": browser, "AGENTSTORE_DATA_DIR": str(data_dir)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split()[2]
        # The prefix is resolved as every command does: the page of the full id opens.
        assert url.startswith("http://127.0.0.1:") and url.endswith(f"/sessions/{seeded.flight}")
        deadline = time.monotonic() + 20
        while not opened.exists() or not opened.read_text():  # the browser starts on its own
            assert time.monotonic() < deadline, "the browser was not opened"
            time.sleep(0.05)
        assert opened.read_text() == url
        # The page it opens is the UI, and the data directory given is the one served.
        assert "text/html" in httpx.get(url, timeout=10).headers["content-type"]
        base = url.split("/sessions/")[0]
        assert httpx.get(f"{base}/v1/sessions/{seeded.flight}", timeout=10).status_code == 200
        # No gRPC door: `agentstore ui` serves only the HTTP side.
        assert "grpc" not in line
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_no_browser_prints_the_address_only(seeded_dir: tuple[Path, Seeded]) -> None:
    server = UiServer(seeded_dir[0])
    try:
        assert server.page == f"{server.base}/"
    finally:
        assert server.stop() == 0
    latest = UiServer(seeded_dir[0], "latest")
    try:
        assert latest.page == f"{latest.base}/sessions/{seeded_dir[1].hostile}"
    finally:
        assert latest.stop() == 0


def test_an_unknown_session_is_one_line_and_no_server(seeded_dir: tuple[Path, Seeded]) -> None:
    result = _ui("no-such-session", "--data-dir", str(seeded_dir[0]), "--no-browser")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "no-such-session" in result.stderr
    assert result.stdout == ""  # nothing was served


def test_refuses_a_non_loopback_host_and_two_stores(tmp_path: Path) -> None:
    result = _ui("--host", "0.0.0.0", "--no-browser", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "loopback only" in result.stderr
    assert "Traceback" not in result.stderr
    result = _ui("--data-dir", str(tmp_path), "--store", "memory://", "--no-browser")
    assert result.returncode == 2
    assert "give --data-dir or --store, not both" in result.stderr


def test_a_busy_port_is_one_clear_line(seeded_dir: tuple[Path, Seeded]) -> None:
    server = UiServer(seeded_dir[0])
    try:
        port = server.base.rsplit(":", 1)[1]
        result = _ui("--data-dir", str(seeded_dir[0]), "--port", port, "--no-browser")
        assert result.returncode == 2
        assert result.stderr.startswith("error: cannot listen on 127.0.0.1:")
        assert "Traceback" not in result.stderr
    finally:
        assert server.stop() == 0

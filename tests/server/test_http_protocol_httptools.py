"""The HTTP door serves through httptools only, never through uvicorn's h11 fallback.

The header deadline (slowloris) and the lingering close after an early answer are kept by
agentstore's subclass of uvicorn's httptools protocol (http_protocol.py). Without
httptools, `agentstore serve` handed uvicorn "auto", which then served through h11 with
neither: a connection that never finished its headers stayed open for good, and a 413
kept reading a declared body to its end. httptools is a dependency of the server extra,
so that was only ever a broken install serving silently unguarded. Now the server refuses
to start without it, before it binds a port or opens the store, and says what to install.

The CLI as a real process, with httptools made unimportable in it (`sys.modules` entry
None: `import httptools` raises as if it were not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentstore.server import http_protocol

_WITHOUT_HTTPTOOLS = (
    "import sys; sys.modules['httptools'] = None; from agentstore_cli.app import main; main()"
)


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--http-port", "0", "--no-grpc"],
        ["serve", "--http-port", "0", "--grpc-port", "0"],
        ["ui", "--port", "0", "--no-browser"],
    ],
    ids=["serve", "serve-both-doors", "ui"],
)
def test_without_httptools_the_server_refuses_to_start(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "agent-data"
    argv = [sys.executable, "-c", _WITHOUT_HTTPTOOLS, command[0], "--data-dir", str(data)]
    done = subprocess.run(
        [*argv, *command[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == ""  # never said it listens
    last = done.stderr.strip().splitlines()[-1]
    wanted = "needs the server extra (httptools is missing): pip install 'agentstore[server]'"
    assert last.endswith(f"agentstore serve {wanted}"), done.stderr
    assert "Traceback" not in done.stderr
    assert not data.exists()  # the store was never opened


def test_the_protocol_is_the_httptools_one() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    protocol = http_protocol.http_protocol_class(1.0, 1024)
    assert issubclass(protocol, HttpToolsProtocol)

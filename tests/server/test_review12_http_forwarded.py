"""Review 12 (HTTP door): `X-Forwarded-For` is believed only from the proxies named with
`--forwarded-allow-ips`.

uvicorn's default believed X-Forwarded-For and X-Forwarded-Proto from 127.0.0.1, so any
process on the machine could put any client address into the access log (and into the
per-client limit on live follows, which counts by that address). Now nobody's headers
are believed unless `--forwarded-allow-ips` names the proxy (uvicorn's meaning: comma-
separated addresses or networks, or `*`).

A real `agentstore serve`; its JSON access log is read once it has stopped (all written).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import orjson
import pytest

from tests.server.http_helpers import running, serve_command

pytestmark = pytest.mark.slow

_FORGED = "203.0.113.9"


def _logged_clients(tmp_path: Path, *args: str) -> list[str]:
    """The `client` of the access-log line of a GET /healthz that claims to be _FORGED."""
    with running(tmp_path / "data", "--log-format", "json", *args) as srv:
        response = httpx.get(f"{srv.url}/healthz", headers={"X-Forwarded-For": _FORGED}, timeout=10)
        assert response.status_code == 200
    lines = [orjson.loads(line) for line in srv.log.read_text().splitlines()]
    return [
        str(line["client"])
        for line in lines
        if line.get("kind") == "access" and line.get("path") == "/healthz"
    ]


def test_a_forged_forwarded_for_is_not_believed_by_default(tmp_path: Path) -> None:
    """From 127.0.0.1 without the option: the log shows the real address, not the claim
    (the old server logged 203.0.113.9:0)."""
    clients = _logged_clients(tmp_path)
    assert clients, "no access-log line for the request"
    assert clients[-1].startswith("127.0.0.1:"), clients
    assert not any(_FORGED in c for c in clients), clients


def test_a_named_proxy_is_believed(tmp_path: Path) -> None:
    """`--forwarded-allow-ips 127.0.0.1`: a request from it is logged as the client it names."""
    clients = _logged_clients(tmp_path, "--forwarded-allow-ips", "127.0.0.1, ::1")
    assert clients[-1] == f"{_FORGED}:0", clients


def test_a_proxy_not_named_is_not_believed(tmp_path: Path) -> None:
    """Only the addresses named: 10.0.0.0/8 does not make 127.0.0.1 a proxy."""
    clients = _logged_clients(tmp_path, "--forwarded-allow-ips", "10.0.0.0/8")
    assert clients[-1].startswith("127.0.0.1:"), clients


@pytest.mark.parametrize("value", ["10.0.0.1/8", "proxy.example", ",", "*,127.0.0.1"])
def test_a_value_that_could_never_match_is_refused(tmp_path: Path, value: str) -> None:
    """A network with host bits, a name, nothing, or `*` among addresses: uvicorn would
    have compared them as text with the client's address, distrusting the proxy silently.
    One line on stderr, exit code 2, no traceback."""
    done = subprocess.run(
        serve_command(
            "--in-memory", "--no-grpc", "--http-port", "0", "--forwarded-allow-ips", value
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1, done.stderr
    assert "--forwarded-allow-ips" in done.stderr
    assert "addresses" in done.stderr  # what it takes, not only that it was refused
    assert "Traceback" not in done.stderr

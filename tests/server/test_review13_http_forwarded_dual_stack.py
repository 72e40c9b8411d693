"""Review 13 (HTTP door): `--forwarded-allow-ips 10.0.0.5` names the proxy on a dual-stack
listener too.

With `--host ::` the server listens on IPv6 and IPv4 alike (Linux's default), and a client
that connects over IPv4 has the IPv4-mapped address `::ffff:10.0.0.5`. uvicorn compares
that with the proxies named as written: `127.0.0.1` never matched `::ffff:127.0.0.1`, so a
proxy reaching the server over IPv4 was silently not believed, and every client was the
proxy (in the access log, and one per-client limit on live follows for all) - the silent
misconfiguration `--forwarded-allow-ips` refuses for a typo. Each IPv4 address or network
named now also names its mapped form.

A real `agentstore serve --host ::` (a token: it is not loopback-only); a request over
IPv4 loopback claiming a client; its JSON access log read once the server has stopped.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from agentstore.server.runner import mapped_forwarded_allow_ips
from tests.server.http_helpers import running

_FORGED = "203.0.113.9"


def test_a_proxy_named_by_its_ipv4_address_is_believed_on_a_dual_stack_listener(
    tmp_path: Path,
) -> None:
    token = tmp_path / "token"
    token.write_text("t" * 40)
    token.chmod(0o600)
    args = ["--host", "::", "--token-file", str(token), "--log-format", "json"]
    with running(tmp_path / "data", *args, "--forwarded-allow-ips", "127.0.0.1") as srv:
        port = srv.url.rsplit(":", 1)[1]
        response = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-For": _FORGED}, timeout=10
        )
        assert response.status_code == 200
    clients = [
        line["client"]
        for line in map(orjson.loads, srv.log.read_text().splitlines())
        if line.get("kind") == "access" and str(line.get("client", "")).startswith(_FORGED)
    ]
    assert clients == [f"{_FORGED}:0"], srv.log.read_text()


@pytest.mark.parametrize(
    ("named", "also"),
    [
        (["127.0.0.1"], ["::ffff:127.0.0.1"]),
        (["10.0.0.0/8", "::1"], ["::ffff:10.0.0.0/104"]),
        (["*"], []),
    ],
)
def test_each_ipv4_entry_gets_its_mapped_form(named: list[str], also: list[str]) -> None:
    assert mapped_forwarded_allow_ips(named) == named + also

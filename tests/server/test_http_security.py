"""Security of the HTTP door: token, bind address, TLS, CORS, CSP and size limits."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.http_helpers import problem, running, serve_command

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token.txt"
    path.write_text(TOKEN + "\n")
    return path


def _refused(tmp_path: Path, *args: str) -> str:
    """Run `agentstore serve ARGS`, expecting it to refuse to start; return its stderr."""
    done = subprocess.run(
        serve_command("--data-dir", str(tmp_path / "data"), "--http-port", "0", "--no-grpc", *args),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert done.stdout == ""  # it never said it was listening
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    return done.stderr


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    assert "without a token" in _refused(tmp_path, "--host", "0.0.0.0")
    assert "without a token" in _refused(tmp_path, "--host", "::")


def test_a_short_token_or_half_a_tls_pair_is_refused(tmp_path: Path) -> None:
    weak = tmp_path / "weak.txt"
    weak.write_text("1234")
    assert "at least 16 characters" in _refused(tmp_path, "--token-file", str(weak))
    assert "both --tls-cert and --tls-key" in _refused(tmp_path, "--tls-cert", str(weak))


def test_the_token_is_required_on_the_api(tmp_path: Path, token_file: Path) -> None:
    args = ("--host", "0.0.0.0", "--token-file", str(token_file))
    with (
        running(tmp_path / "data", *args) as srv,
        srv.client() as http,
    ):
        missing = http.post("/v1/sessions", json={})
        assert problem(missing)["code"] == "unauthenticated"
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        for value in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}"):
            wrong = http.get("/v1/sessions", headers={"authorization": value})
            assert wrong.status_code == 401
        assert list((tmp_path / "data").glob("sessions/*.json")) == []
        good = {"authorization": f"Bearer {TOKEN}"}
        created = http.post("/v1/sessions", json={}, headers=good)
        assert created.status_code == 201
        assert http.get("/healthz").status_code == 200  # probes need no token


def test_tls(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with running(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key)) as srv:
        assert srv.url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=srv.url, verify=trusted, timeout=10) as http:
            assert http.post("/v1/sessions", json={"name": "tls"}).status_code == 201
        plain = srv.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{plain}/healthz", timeout=5)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    refused = _refused(tmp_path, "--tls-cert", str(garbage), "--tls-key", str(garbage))
    assert "TLS" in refused


def test_no_cors_unless_configured(tmp_path: Path) -> None:
    preflight = {
        "origin": "https://ui.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    with running(tmp_path / "a") as srv, srv.client() as http:
        response = http.get("/v1/sessions", headers={"origin": "https://ui.example"})
        assert "access-control-allow-origin" not in response.headers
        assert (
            "access-control-allow-origin"
            not in http.options("/v1/sessions", headers=preflight).headers
        )
    with (
        running(tmp_path / "b", "--cors-origin", "https://ui.example") as srv,
        srv.client() as http,
    ):
        allowed = http.options("/v1/sessions", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        other = http.get("/v1/sessions", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_preflight_needs_no_token(tmp_path: Path, token_file: Path) -> None:
    origin = {"origin": "https://ui.example"}
    preflight = {**origin, "access-control-request-method": "GET"}
    preflight["access-control-request-headers"] = "authorization"
    args = ("--cors-origin", "https://ui.example", "--token-file", str(token_file))
    with running(tmp_path / "data", *args) as srv, srv.client() as http:
        allowed = http.options("/v1/sessions", headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        denied = http.get("/v1/sessions", headers=origin)
        assert denied.status_code == 401  # readable by the page: it carries CORS headers
        assert denied.headers["access-control-allow-origin"] == "https://ui.example"
        auth = {**origin, "authorization": f"Bearer {TOKEN}"}
        assert http.get("/v1/sessions", headers=auth).status_code == 200


def test_ui_pages_carry_a_strict_csp(tmp_path: Path) -> None:
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<!doctype html><title>ui</title><script src=app.js></script>")
    (ui / "app.js").write_text("console.log('ui')")
    with running(tmp_path / "data", "--ui-dir", str(ui)) as srv, srv.client() as http:
        page = http.get("/")
        assert page.status_code == 200 and "<title>ui</title>" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert http.get("/app.js").status_code == 200
        api = http.get("/v1/sessions")
        assert api.headers["x-content-type-options"] == "nosniff"
        assert (
            http.get("/v1/sessions/none")
            .headers["content-type"]
            .startswith("application/problem+json")
        )


def test_oversized_bodies_are_refused_and_write_nothing(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--max-body-bytes", "2048") as srv, srv.client() as http:
        sid = http.post("/v1/sessions", json={}).json()["id"]
        big = {"type": "a", "payload": "x" * 4096}
        declared = http.post(f"/v1/sessions/{sid}/events", json=big)
        assert declared.status_code == 413
        assert problem(declared)["code"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
            yield b'{"type": "a", "payload": "'
            for _ in range(8):
                yield b"y" * 512
            yield b'"}'

        streamed = http.post(
            f"/v1/sessions/{sid}/events",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert problem(streamed)["code"] == "payload_too_large"
        assert http.get(f"/v1/sessions/{sid}/events").json() == []
        assert http.post(f"/v1/sessions/{sid}/events", json={"type": "a"}).status_code == 201


def test_without_a_token_only_loopback_host_names_are_answered(
    tmp_path: Path, token_file: Path
) -> None:
    """A web page that rebinds its own name to 127.0.0.1 cannot read the store."""
    rebound = {"host": "attacker.example"}
    with running(tmp_path / "a", "--allowed-host", "agents.internal") as srv, srv.client() as http:
        refused = http.get("/v1/sessions", headers=rebound)
        assert (refused.status_code, problem(refused)["code"]) == (403, "forbidden_host")
        assert http.post("/v1/sessions", json={}, headers=rebound).status_code == 403
        assert list((tmp_path / "a").glob("sessions/*.json")) == []
        for host in ("localhost:1", "127.0.0.1", "[::1]:8765", "ui.localhost", "agents.internal"):
            assert http.get("/v1/sessions", headers={"host": host}).status_code == 200, host
    with running(tmp_path / "b", "--token-file", str(token_file)) as srv, srv.client() as http:
        auth = {"authorization": f"Bearer {TOKEN}", **rebound}
        assert http.get("/v1/sessions", headers=auth).status_code == 200  # the token decides


def test_without_a_token_a_page_of_another_origin_cannot_write(tmp_path: Path) -> None:
    """A page elsewhere can POST text/plain to 127.0.0.1 with no preflight (CSRF)."""
    simple = {"content-type": "text/plain"}  # what a cross-site form or fetch may send
    args = ("--cors-origin", "https://ui.example", "--allowed-host", "agents.internal")
    with running(tmp_path / "data", *args) as srv, srv.client() as http:
        for origin in ("https://evil.example", "null", "http://localhost:3000", "http://[x"):
            headers = {**simple, "origin": origin}
            refused = http.post("/v1/sessions", content=b'{"name": "csrf"}', headers=headers)
            assert (refused.status_code, problem(refused)["code"]) == (403, "forbidden_host")
        assert list((tmp_path / "data").glob("sessions/*.json")) == []
        host = srv.url.removeprefix("http://")
        for origin, via in (
            (f"http://{host}", host),  # the web UI's own pages
            ("https://ui.example", host),  # allowed with --cors-origin
            ("https://agents.internal", "127.0.0.1:8765"),  # behind a proxy
        ):
            headers = {**simple, "origin": origin, "host": via}
            assert http.post("/v1/sessions", json={}, headers=headers).status_code == 201, origin
        assert http.post("/v1/sessions", json={}).status_code == 201  # curl sends no Origin

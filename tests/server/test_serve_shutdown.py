"""`agentstore serve` as a process: graceful SIGTERM under load, JSON logs, startup errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson

import agentstore
from tests.server.grpc_helpers import self_signed_cert
from tests.server.http_helpers import running, serve_command, start_server


def test_sigterm_while_clients_append_loses_nothing_acknowledged(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data")
    with srv.client() as http:
        sid = http.post("/v1/sessions", json={"name": "shutdown"}).json()["id"]
    acked: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for n in range(100_000):
                event_id = f"w{worker}-{n}"
                body = {"id": event_id, "type": "tick", "payload": {"worker": worker, "n": n}}
                try:
                    response = client.post(f"/v1/sessions/{sid}/events", json=body)
                except httpx.TransportError:
                    return  # the server has stopped accepting: expected
                if response.status_code != 201:
                    return
                assert response.json()["events"][0]["id"] == event_id
                with lock:
                    acked.append(event_id)
                    if len(acked) >= 200:
                        enough.set()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    with srv.client() as follower, follower.stream("GET", f"/v1/sessions/{sid}/stream") as live:
        assert live.status_code == 200
        for thread in threads:
            thread.start()
        assert enough.wait(60), "the writers did not get going"
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        # An open live follow must not hold the shutdown up.
        assert srv.stop(timeout=20) == 0
        assert time.monotonic() - started < 15
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    log = srv.log.read_text()
    assert "Traceback" not in log
    assert "the store is closed" in log

    with agentstore.open_sync(srv.data_dir) as store:
        stored = store.get_events(sid)
    assert [e.sequence_number for e in stored] == list(range(1, len(stored) + 1))
    stored_ids = {e.id for e in stored}
    missing = [event_id for event_id in acked if event_id not in stored_ids]
    assert missing == [], f"{len(missing)} acknowledged appends were lost"
    assert len(acked) >= 200


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    with running(tmp_path / "data", "--log-format", "json") as srv, srv.client() as http:
        http.post("/v1/sessions", json={})
        http.get("/v1/sessions/missing")
    lines = srv.log.read_text().splitlines()
    records = [orjson.loads(line) for line in lines]
    access = [r for r in records if r.get("kind") == "access"]
    assert {(r["method"], r["path"], r["status"]) for r in access} >= {
        ("POST", "/v1/sessions", 201),
        ("GET", "/v1/sessions/missing", 404),
    }
    assert all(isinstance(r["duration_ms"], float) for r in access)


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            serve_command("--data-dir", str(tmp_path / "d"), "--http-port", str(port), "--no-grpc"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_without_the_server_extra_the_error_names_it(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "fastapi"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ImportError(\"No module named 'fastapi'\", name='fastapi')\n"
    )
    done = subprocess.run(
        serve_command("--data-dir", str(tmp_path / "d"), "--http-port", "0", "--no-grpc"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(shadow.parent)},
    )
    assert done.returncode == 1
    assert "pip install 'agentstore[server]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_failed_tls_handshake_keeps_the_json_log_one_object_per_line(tmp_path: Path) -> None:
    # grpc's core logs each failed handshake on stderr, as plain text, unless told not to.
    cert, key = self_signed_cert(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    log = tmp_path / "server.log"
    args = ("--http-port", "0", "--grpc-port", "0", "--log-format", "json")
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            serve_command("--data-dir", str(tmp_path / "data"), *args, *tls),
            stdout=subprocess.PIPE,
            stderr=err,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert proc.stdout is not None
        host, _, port = orjson.loads(proc.stdout.readline())["listening"]["grpc"].rpartition(":")
        with socket.create_connection((host, int(port)), timeout=15) as plain:
            plain.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")  # not a TLS hello
            while plain.recv(4096):  # the server closes it once the handshake failed
                pass
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        if proc.stdout is not None:
            proc.stdout.close()
    lines = log.read_text().splitlines()
    assert lines and all(isinstance(orjson.loads(line), dict) for line in lines), lines


def test_sigterm_right_after_the_listening_line_is_a_graceful_stop(tmp_path: Path) -> None:
    # The line used to come before the signal handlers were in place: a supervisor that
    # stopped the server at once killed it (exit -15) without closing the store.
    for attempt in range(3):
        for doors in (("--http-port", "0", "--no-grpc"), ("--no-http", "--grpc-port", "0")):
            proc = subprocess.Popen(
                serve_command("--data-dir", str(tmp_path / f"data{attempt}"), *doors),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert proc.stdout is not None
            with proc.stdout:
                assert orjson.loads(proc.stdout.readline())["listening"]
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0, doors

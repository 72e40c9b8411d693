"""Review 11 (HTTP door): a long read of a session deleted, or made again, while it streams.

GET .../events and .../export stream a session a page (500 events) at a time, each page a
read of its own. A session deleted meanwhile failed the next page with a traceback in the
server's log; one made again under its id (a client that resets a session by id) gave the
later pages of the other session: the old code's export ended as valid JSON with the
session of the first and events of both, or with a tenth of the events, looking whole.
Now every page must come from the session the read began with, and a read that cannot
go on ends unfinished (the chunked body is cut), with one warning line in the log.

A real server process over a data directory, and over PostgreSQL (where the old code's
reads went on with the other session's events); a client that reads a little, waits while
the session is deleted (and made again), then reads on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import orjson
import pytest

import agentstore
from tests.server.http_helpers import ServerProcess, _read_line, _wait_healthy, serve_command

pytestmark = pytest.mark.slow

_EVENTS = 10_000  # of 4 kB: 40 MB, far beyond what the socket buffers hold


URL = os.environ.get(
    "AGENTSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def _store(kind: str, tmp_path: Path) -> Iterator[str | Path]:
    """A data directory, or a PostgreSQL schema of its own (dropped at the end)."""
    if kind == "files":
        yield tmp_path / "data"
        return
    asyncpg = pytest.importorskip("asyncpg", reason="agentstore[postgres] is not installed")
    schema = f"t_{secrets.token_hex(6)}"
    try:
        agentstore.open_sync(f"{URL}?schema={schema}").close()
    except Exception as exc:  # any failure to reach it: no server here
        pytest.skip(f"no PostgreSQL server at {URL} ({exc})")
    try:
        yield f"{URL}?schema={schema}"
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(URL)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        anyio.run(drop)


@contextlib.contextmanager
def _running(target: str | Path, log: Path) -> Iterator[ServerProcess]:
    where = ("--data-dir", str(target)) if isinstance(target, Path) else ("--store", target)
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            serve_command(*where, "--http-port", "0", "--no-grpc"),
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = orjson.loads(_read_line(proc, 30))["listening"]["http"]
    srv = ServerProcess(proc, url, Path(), log)
    try:
        _wait_healthy(srv, 30)
        yield srv
    finally:
        srv.stop()


def _seed(target: str | Path, sid: str) -> None:
    with agentstore.open_sync(target) as store:
        store.create_session(session_id=sid)
        blob = "x" * 4_000
        for _ in range(_EVENTS // 1_000):
            store.append_many(sid, [agentstore.new_event("custom", blob) for _ in range(1_000)])


@pytest.fixture(scope="module", params=["files", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str | Path, ServerProcess]]:
    """One server per kind of store for the module (start and stop cost 2.5 s each): every
    test reads a session of its own, and what it checks of the log is the lines its read
    added. The whole log is checked for a traceback once the server has stopped."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(_store(request.param, tmp_path))
        srv = stack.enter_context(_running(target, tmp_path / "server.log"))
        yield target, srv
    assert "Traceback" not in srv.log.read_text()


@pytest.mark.parametrize("path", ["events", "events?format=jsonl", "export"])
@pytest.mark.parametrize("made_again", [True, False], ids=["made-again", "deleted"])
def test_a_read_of_a_session_changed_under_it_ends_unfinished(
    served: tuple[str | Path, ServerProcess], path: str, made_again: bool
) -> None:
    target, srv = served
    sid = f"long-{secrets.token_hex(4)}"
    _seed(target, sid)
    before = srv.log.read_text()
    _read_while_changed(srv, sid, path, made_again)
    # The server logs the line before it cuts the body, so the line is there by now.
    added = srv.log.read_text()[len(before) :]
    assert "cut a read of" in added
    assert "Traceback" not in added


def _read_while_changed(srv: ServerProcess, sid: str, path: str, made_again: bool) -> None:
    with (
        srv.client() as http,
        srv.client(timeout=60) as reader,
        reader.stream("GET", f"/v1/sessions/{sid}/{path}") as response,
    ):
        assert response.status_code == 200
        chunks = response.iter_raw()
        got = bytearray(next(chunks))  # it reads a little...
        assert http.delete(f"/v1/sessions/{sid}").status_code == 204
        if made_again:
            assert http.post("/v1/sessions", json={"id": sid}).status_code == 201
            other = [{"type": "custom", "payload": "other"} for _ in range(1_000)]
            for _ in range(_EVENTS // 1_000):
                assert http.post(f"/v1/sessions/{sid}/events", json=other).status_code == 201
        with pytest.raises(httpx.RemoteProtocolError):  # ... then on: it ends cut
            _read_into(got, chunks)
        assert b'"other"' not in got  # never another session's events
        assert len(got) < _EVENTS * 4_000


def _read_into(got: bytearray, chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        got += chunk

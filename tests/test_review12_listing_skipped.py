"""Review 12: a session listing says which sessions it passed over, through a server too.

The file backend passes over a session file it cannot read (one bad file must not hide the
others). Before, only its log said so: the local CLI caught the log line and warned, but
through `agentstore serve` (`--store grpc://...`, `GET /v1/sessions`) the client was told
nothing and `agentstore sessions` exited 0 with a session missing. Now the page says it
(`SessionPage.skipped`), every door carries it, and the CLI warns from the page, the same
lines and exit code locally and through a server. Files are named relative to the data
directory, so a server names no path of its own machine.

A real data directory, a real `agentstore serve` subprocess with both doors, the CLI as a
real process. The damage is a truncated session file (a session the index knows) or a
directory where a session file belongs (one the scan finds and cannot place in the order).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import orjson
import pytest

import agentstore
from agentstore.backends.base import SkippedSession
from agentstore.server import agentstore_pb2 as pb
from agentstore.server import agentstore_pb2_grpc as pb_grpc
from tests.cli_process import agentstore_cli
from tests.server.http_helpers import serving

_REASON = "sessions/s-mid.json is not a valid session file ("


async def _seed(data_dir: Path, damaged: str | None = "s-mid") -> None:
    """Three sessions, oldest first; the session file of `damaged` cut short."""
    async with agentstore.open(data_dir) as store:
        for sid in ("s-old", "s-mid", "s-new"):
            await store.create_session(session_id=sid, name=sid, labels={"env": "prod"})
    if damaged is not None:
        bad = data_dir / "sessions" / f"{damaged}.json"
        bad.write_bytes(bad.read_bytes()[:17])  # cut mid-write by a crash or a full disk


def _three(data_dir: Path, damaged: str | None = "s-mid") -> None:
    asyncio.run(_seed(data_dir, damaged))


@dataclass
class _Server:
    http: str
    grpc: str
    log: Path


@contextlib.contextmanager
def _serving(data_dir: Path) -> Iterator[_Server]:
    """`agentstore serve` over `data_dir`, both doors on free loopback ports."""
    with serving(data_dir, "--http-port", "0", "--grpc-port", "0") as where:
        yield _Server(where["http"], where["grpc"], data_dir.parent / "server.log")


async def test_a_page_names_the_sessions_it_passed_over_relative_to_the_data_dir(
    tmp_path: Path,
) -> None:
    await _seed(tmp_path)
    (tmp_path / "sessions" / "s-dir.json").mkdir()  # not in the index: found by the scan
    async with agentstore.open(tmp_path, read_only=True) as store:
        first = await store.list_sessions_page(limit=1)
        assert [s.id for s in first.sessions] == ["s-new"]
        # s-mid's place is past this page; s-dir's is not known: it is named on every page.
        assert [s.session_id for s in first.skipped] == ["s-dir"]
        second = await store.list_sessions_page(limit=5, cursor=first.next_cursor)
        assert [s.id for s in second.sessions] == ["s-old"]
        assert {s.session_id for s in second.skipped} == {"s-dir", "s-mid"}
        for item in second.skipped:
            assert isinstance(item, SkippedSession)
            assert str(tmp_path) not in item.reason
            assert f"sessions/{item.session_id}.json" in item.reason
            assert str(item) == f"{item.session_id}: {item.reason}"
        # The list API has no place for them: it lists what it could read.
        assert [s.id for s in await store.list_sessions()] == ["s-new", "s-old"]


async def test_a_store_that_passes_nothing_over_says_none() -> None:
    async with agentstore.open(in_memory=True) as store:
        await store.create_session(session_id="one")
        page = await store.list_sessions_page()
        assert page.skipped == []


@pytest.fixture(scope="module")
def mid_damaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, _Server]]:
    """The three sessions with s-mid's file cut short, and a server over them: shared by
    the tests that only list them (a server start is most of such a test's time)."""
    data = tmp_path_factory.mktemp("mid") / "data"
    _three(data)
    with _serving(data) as server:
        yield data, server


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_the_cli_warns_and_exits_the_same_locally_and_through_a_grpc_server(
    mid_damaged: tuple[Path, _Server], fmt: str
) -> None:
    data, server = mid_damaged
    local = agentstore_cli("--data-dir", data, "sessions", "--format", fmt)
    logged = len(server.log.read_bytes())
    remote = agentstore_cli("--store", f"grpc://{server.grpc}", "sessions", "--format", fmt)
    assert local.returncode == 1, local
    # Before, through the server: s-mid left out, nothing said, exit 0.
    assert remote.returncode == local.returncode, remote
    assert remote.stderr == local.stderr
    lines = remote.stderr.splitlines()
    assert lines[0].startswith(f"skipped: s-mid: {_REASON}"), lines
    assert lines[1].startswith("error: 1 session could not be read and is not listed")
    assert len(lines) == 2
    assert str(data) not in remote.stderr
    if fmt == "json":
        assert remote.stdout == local.stdout
        assert [s["id"] for s in orjson.loads(remote.stdout)] == ["s-new", "s-old"]
    else:
        assert "s-new" in remote.stdout and "s-old" in remote.stdout
        assert "s-mid" not in remote.stdout
    # The server's operator still finds it, with its path, in the server's log (logged as
    # the listing is read, so there before the answer: this listing's own lines).
    added = server.log.read_bytes()[logged:].decode()
    assert f"{data}/sessions/s-mid.json is not a valid session file" in added


def test_latest_is_refused_through_a_server_when_the_newest_may_be_unreadable(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    _three(data, damaged="s-new")
    local = agentstore_cli("--data-dir", data, "delete", "latest", "--yes")
    with _serving(data) as server:
        url = f"grpc://{server.grpc}"
        remote = agentstore_cli("--store", url, "delete", "latest", "--yes")
        # Before, 'latest' named s-mid through the server, and this deleted it.
        assert remote.returncode == local.returncode == 1, remote
        assert remote.stderr == local.stderr
        assert remote.stderr.startswith("error: cannot tell which session is the latest")
        assert "sessions/s-new.json" in remote.stderr and remote.stderr.count("\n") == 1
        listed = agentstore_cli("--store", url, "sessions", "--format", "json")
    assert [s["id"] for s in orjson.loads(listed.stdout)] == ["s-mid", "s-old"]


def test_the_http_listing_and_the_agentstore_grpc_service_carry_the_skipped(
    mid_damaged: tuple[Path, _Server],
) -> None:
    data, server = mid_damaged
    answer = httpx.get(f"{server.http}/v1/sessions", params={"label": "env=prod"}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [s["id"] for s in body["sessions"]] == ["s-new", "s-old"]
    [skipped] = body["skipped"]
    assert skipped["session_id"] == "s-mid"
    assert skipped["reason"].startswith(_REASON)
    assert str(data) not in answer.text
    # With summaries too (the web UI's table).
    summarised = httpx.get(f"{server.http}/v1/sessions?summary=1", timeout=30).json()
    assert summarised["skipped"] == [skipped]
    schema = httpx.get(f"{server.http}/openapi.json", timeout=30).json()
    listing = schema["components"]["schemas"]["SessionListOut"]["properties"]
    assert listing["skipped"]["type"] == "array"

    # The API for agents in other languages (agentstore.v1.AgentStore) says the same.
    async def over_grpc() -> pb.ListSessionsResponse:
        async with grpc.aio.insecure_channel(server.grpc) as channel:
            stub = pb_grpc.AgentStoreStub(channel)
            reply: pb.ListSessionsResponse = await stub.ListSessions(
                pb.ListSessionsRequest(limit=10)
            )
            return reply

    reply = asyncio.run(over_grpc())
    assert [s.id for s in reply.sessions] == ["s-new", "s-old"]
    assert [(s.session_id, s.reason) for s in reply.skipped] == [("s-mid", skipped["reason"])]


def test_a_listing_that_read_everything_through_a_server_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _three(data, damaged=None)
    with _serving(data) as server:
        remote = agentstore_cli("--store", f"grpc://{server.grpc}", "sessions", "--format", "json")
        body = httpx.get(f"{server.http}/v1/sessions", timeout=30).json()
    assert remote.returncode == 0, remote
    assert remote.stderr == ""
    assert body["skipped"] == []

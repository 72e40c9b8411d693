"""Review 13: `agentstore copy` extends a session in a server by a batch over its limit.

A copy extends a session that grew in SRC batch by batch, each batch one append (atomic,
marked as SRC's was). `append_many` in a process has no size limit, a server's requests
have one (`--max-body-bytes`, 4 MiB): a batch of ten 600 kB events was refused ("the
append is 6001022 bytes; the limit is 4194304: split the batch"), and the copy told the
user to "repair or delete it, then run the copy again", which failed the same way for
good (a new session is imported in parts and was copied). Now a batch refused as too large
is appended in halves, each whole: every event arrives, with its id, number and time.

A real data directory, a real `agentstore serve` over another, the CLI as a process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import agentstore
from tests.cli_process import agentstore_cli
from tests.server.http_helpers import serving_grpc


async def _append(src: Path, events: list[agentstore.Event]) -> None:
    async with agentstore.open(src) as store:
        try:
            await store.get_session("grows")
        except agentstore.SessionNotFoundError:
            await store.create_session(session_id="grows")
        await store.append_many("grows", events)


async def _events(where: str | Path) -> list[str]:
    async with agentstore.open(where, read_only=True) as store:
        return [e.to_json() for e in await store.get_events("grows")]


def test_a_batch_over_the_server_s_limit_extends_the_session(tmp_path: Path) -> None:
    src = tmp_path / "src"
    asyncio.run(_append(src, [agentstore.new_event("custom", {"first": True})]))
    (tmp_path / "server").mkdir()
    with serving_grpc(tmp_path / "server") as where:
        first = agentstore_cli("copy", src, f"grpc://{where}")
        assert first.returncode == 0, first.stderr
        large = [agentstore.new_event("custom", {"i": i, "b": "z" * 600_000}) for i in range(10)]
        asyncio.run(_append(src, large))
        again = agentstore_cli("copy", src, f"grpc://{where}")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "extended 1" in again.stdout and "(10 events written)" in again.stdout
        copied = asyncio.run(_events(f"grpc://{where}"))
    assert copied == asyncio.run(_events(src))

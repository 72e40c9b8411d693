"""The CLI against a server: `agentstore --store grpc://host:port replay ID`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import orjson

import agentstore

from .grpc_helpers import running_door, self_signed_cert


async def test_replay_and_sessions_through_a_grpc_server() -> None:
    async with running_door(token="cli-token") as door:
        store = door.service.store
        session = await store.create_session(name="served")
        await store.append(session.id, agentstore.new_event("user_message", {"text": "hi"}))
        await store.append(session.id, agentstore.new_event("tool_called", {"tool": "search"}))
        url = f"grpc://{door.target}"
        env = {**os.environ, "AGENTSTORE_TOKEN": "cli-token", "NO_COLOR": "1"}
        cli = [sys.executable, "-m", "agentstore_cli", "--store", url]

        done = await anyio.run_process(
            [*cli, "replay", session.id[:8], "--format", "jsonl"], env=env, check=False
        )
        assert done.returncode == 0, done.stderr.decode()
        lines = [orjson.loads(line) for line in done.stdout.splitlines()]
        assert [(e["sequence_number"], e["type"]) for e in lines] == [
            (1, "user_message"),
            (2, "tool_called"),
        ]
        done = await anyio.run_process([*cli, "sessions", "--format", "json"], env=env, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert [s["id"] for s in orjson.loads(done.stdout)] == [session.id]

        # A wrong token is one clear line and a non-zero exit, never a traceback.
        bad = {**env, "AGENTSTORE_TOKEN": "wrong"}
        done = await anyio.run_process([*cli, "replay", session.id], env=bad, check=False)
        assert done.returncode != 0
        err = done.stderr.decode()
        assert "token" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_an_unreachable_server_is_one_clear_line() -> None:
    async with running_door() as door:
        target = door.target
    done = await anyio.run_process(
        [sys.executable, "-m", "agentstore_cli", "--store", f"grpc://{target}", "sessions"],
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode != 0 and "unavailable" in err and "Traceback" not in err


async def test_a_tls_handshake_that_fails_is_one_clear_line(tmp_path: Path) -> None:
    # grpc's core logs a failed handshake on stderr by itself unless told not to.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_")}
    async with (
        running_door(tls=self_signed_cert(tmp_path)) as untrusted,
        running_door() as plaintext,
    ):
        for target in (untrusted.target, plaintext.target):
            done = await anyio.run_process(
                [
                    sys.executable,
                    "-m",
                    "agentstore_cli",
                    "--store",
                    f"grpcs://{target}",
                    "sessions",
                ],
                env=env,
                check=False,
            )
            err = done.stderr.decode()
            assert done.returncode != 0 and "Traceback" not in err
            assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), err

"""A client outside Python proves the .proto: Node.js with @grpc/grpc-js and @grpc/proto-loader.

`tests/server/node/client.js` loads `agentstore.proto` at run time (no generated code),
creates a session, appends (one call per batch, then over an AppendStream call), provokes
a concurrency conflict and replays what it wrote, against a live gRPC door on a file
store. Its npm packages are installed into `tests/server/node/node_modules` (from the
committed lock file) on first use.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import anyio
import orjson
import pytest

import agentstore

from .grpc_helpers import running_door

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def node_client() -> Path:
    """Install the Node client's packages (once) and return its script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("this test needs Node.js and npm (they are on this project's machines)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )
    return NODE_DIR / "client.js"


@pytest.mark.parametrize("token", [None, "node-token"])
async def test_a_node_client_creates_appends_and_replays(
    node_client: Path, tmp_path: Path, token: str | None
) -> None:
    async with (
        agentstore.open(tmp_path / "data", pricing=False) as store,
        running_door(store, token=token) as door,
    ):
        args = ["node", str(node_client), door.target, *([token] if token else [])]
        done = await anyio.run_process(args, check=False)
        assert done.returncode == 0, done.stderr.decode()
        out = orjson.loads(done.stdout)
        sid = out["session_id"]
        assert out["appended"] == [1, 2]
        assert out["conflict"] == {
            "code": "ABORTED",
            "agentstore_code": "concurrency_conflict",
        }
        assert out["streamed"] == [
            {"tag": 1, "seq": 3},
            {"tag": 2, "status": "NOT_FOUND", "agentstore_code": "session_not_found"},
        ]
        assert [(e["seq"], e["type"]) for e in out["replayed"]] == [
            (1, "user_message"),
            (2, "tool_called"),
            (3, "llm_response"),
        ]
        assert out["replayed"][1]["payload"] == {
            "tool": "search_flights",
            "query": "BER -> MUC",
        }
        assert out["replayed"][1]["metadata"] == {
            "tool_name": "search_flights",
            "duration_ms": 800,
        }
        # What Node wrote is what the store holds, read in-process.
        stored = await store.replay(sid)
        assert [e.payload for e in stored] == [e["payload"] for e in out["replayed"]]
        assert (await store.get_session(sid)).labels == {"lang": "js"}
        assert (await store.get_state(sid)).tool_calls == 1

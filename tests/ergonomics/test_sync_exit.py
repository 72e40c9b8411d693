"""A script that forgets to close its `SyncStore` still exits, warns, and loses nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentstore

# A ceiling for a run that takes well under a second; a hang is what this catches.
EXIT_TIMEOUT = 60

FORGETFUL = textwrap.dedent(
    """
    import sys
    import agentstore

    store = agentstore.open_sync(sys.argv[1])
    session = store.create_session(name="forgotten")
    store.append(session.id, agentstore.user_message("still here"))
    print(session.id, flush=True)
    if sys.argv[2] == "dropped":
        # Dropped without close(): the store is closed when it is collected.
        del store
        import gc
        gc.collect()
        print("collected", flush=True)
    """
)


@pytest.mark.parametrize("how", ["kept", "dropped"])
def test_an_unclosed_sync_store_does_not_hang_exit(tmp_path: Path, how: str) -> None:
    script = tmp_path / "forgetful.py"
    script.write_text(FORGETFUL)
    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", str(script), str(data), how],
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" in done.stderr
    assert "SyncStore" in done.stderr and "never closed" in done.stderr
    assert "Traceback" not in done.stderr
    session_id = done.stdout.split()[0]
    # The forgotten store was closed properly: its lock is free and its event is stored.
    with agentstore.open_sync(data) as store:
        events = store.get_events(session_id)
    assert [e.payload["content"] for e in events] == ["still here"]

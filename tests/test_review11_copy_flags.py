"""Review 11: `agentstore copy` names both its stores (SRC, DST); the global store flags
given with it were silently ignored (`--read-store` thought to spare SRC's primary, a
`--data-dir` or `--store` thought to be a target). Now one line, exit 2, nothing written
(this failed before the fix); the same settings from the environment still do not apply."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.cli_process import agentstore_cli


async def _source(path: Path) -> None:
    async with agentstore.open(path) as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("custom", {}))


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(["--data-dir", "{other}"], id="data-dir"),
        pytest.param(["--store", "{other}"], id="store"),
        pytest.param(
            ["--store", "postgresql://u@primary/db", "--read-store", "postgresql://u@replica/db"],
            id="read-store",
        ),
    ],
)
async def test_a_global_store_flag_with_copy_is_refused(tmp_path: Path, flags: list[str]) -> None:
    src, dst, other = tmp_path / "src", tmp_path / "dst", tmp_path / "other"
    await _source(src)
    given = [flag.format(other=other) for flag in flags]
    out = agentstore_cli(*given, "copy", src, dst)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"{given[0]} does not apply to copy" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not dst.exists() and not other.exists()


async def test_store_settings_from_the_environment_do_not_stop_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    await _source(src)
    monkeypatch.setitem(os.environ, "AGENTSTORE_STORE", "postgresql://u@elsewhere/db")
    monkeypatch.setitem(os.environ, "AGENTSTORE_DATA_DIR", str(tmp_path / "other"))
    out = agentstore_cli("copy", src, dst)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("copied 1 sessions")

"""Review 8b: the file backend's `head()` answers from one `fstat` when nothing changed;
99a1acb added a second check, the log's ctime equal to its mtime (a write sets both alike,
a link or unlink only the ctime), and a `stat` of the log's name when they differ. A log
whose mtime was kept when it was copied (a restore with `cp -a`, `rsync -a`, `tar x`; the
Go original's data copied in) has them differ until its next write: a session that is only
read (archived, looked at in the UI) paid a `stat` on every get_state, for good (+2.5 us,
+30 % on a hot get_state measured on ext4). Once the name was seen leading to the file,
the ctime it had then is enough: a link or unlink since changes it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentstore import Store
from agentstore.backends.file import FileBackend

_FIXTURE = Path(__file__).parent / "fixtures" / "go-agent-data"
_SID = "cad4e0ba-27ab-47d6-8db5-e400ab6031be"


async def test_hot_head_of_a_restored_log_does_not_stat_its_name_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "go"
    shutil.copytree(_FIXTURE, data)  # copy2: the logs keep their mtime, get a new ctime
    log = data / "events" / f"{_SID}.jsonl"
    st = os.stat(log)
    assert st.st_ctime_ns != st.st_mtime_ns
    async with await Store(FileBackend(data)) as store:
        assert (await store.get_state(_SID)).version == 250  # the log open, the state cached
        stats: list[Any] = []
        real_stat = os.stat

        def counting_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
            if Path(path) == log:
                stats.append(path)
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", counting_stat)
        for _ in range(100):
            assert (await store.get_state(_SID)).version == 250
        monkeypatch.undo()
        assert len(stats) <= 1

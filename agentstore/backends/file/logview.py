"""`LogView`: what this process knows of one session's log.

A record shared by everything that reads or appends a log (`log.py` opens and keeps
them; reads, commits and retries use them), apart from the `Logs` that manages them so
that those users need not depend on how logs are opened, evicted and caught up.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agentstore.backends.file.idindex import IdIndex
from agentstore.backends.file.mutex import ViewMutex

__all__ = ["LogView"]


@dataclass(slots=True)
class LogView:
    """What this process knows of one session's log."""

    session_id: str
    path: Path
    fd: int | None
    ino: int
    created_at: datetime
    """The session's creation time: tells a session created again from the one we saw."""
    size: int = 0
    """End of the last complete line (or batch) this process has read."""
    last_seq: int = 0
    last_ts: datetime | None = None
    ids: IdIndex | None = None
    """Which ids the log has, near which line (`idindex.py`): built on the first append,
    for idempotent retries."""
    checkpoints: dict[int, int] = field(default_factory=dict)
    """Sequence number -> byte offset of its line, every `CHECKPOINT_EVERY` lines."""
    named_ctime: int = 0
    """The file's ctime (ns) when its name was last seen leading to it (`head`)."""
    mutex: ViewMutex = field(default_factory=ViewMutex)
    """Held by a worker thread while it reads or changes the fields above (reentrant), or
    by a flight from its write to its landing (see `mutex.py`)."""

    def close(self) -> None:
        """Close the file (and so release any flock this process holds on it)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

"""Opening a data directory: check it, create what is missing, clean up after crashes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from agentstore.backends.file import atomic
from agentstore.backends.file.layout import Layout, classify, temp_pid
from agentstore.errors import InvalidInputError, StorageError, StoreLockedError

__all__ = ["prepare_directory"]


def prepare_directory(layout: Layout, read_only: bool) -> None:
    """Check (or create) a data directory; a writer also removes crashed writers' temp files.

    Every error a user can cause here is one of ours and says what to do.
    """
    root = layout.root
    if root.exists() and not root.is_dir():
        raise InvalidInputError(
            f"{root} is a file, not a data directory: pass the path of a directory "
            "(it is created if it does not exist)"
        )
    if read_only:
        if not root.is_dir():
            raise StorageError(f"no data directory at {root}: check the path")
        return
    try:
        for directory in (root, layout.sessions_dir, layout.events_dir, layout.snapshots_dir):
            directory.mkdir(mode=atomic.DIR_MODE, exist_ok=True)
            if directory.is_symlink() or not directory.is_dir():
                raise StorageError(
                    f"{directory} is not a directory: move it out of the way, or pass "
                    "another data directory"
                )
    except OSError as exc:
        raise StoreLockedError(
            f"cannot create data directory {root} ({exc.strerror}): check its permissions, "
            "or open it read-only"
        ) from exc
    if not os.access(layout.events_dir, os.W_OK):
        raise StoreLockedError(
            f"data directory {root} is not writable by this process: check its permissions, "
            "or open it read-only"
        )
    remove_stale_temp_files(layout)


def remove_stale_temp_files(layout: Layout) -> None:
    """Delete temp files left by crashed writers (their pid no longer runs).

    Only names that `classify` calls temp files are candidates: no session's file can be.
    """
    places = [
        (layout.root, "snapshots"),
        (layout.sessions_dir, "sessions"),
        (layout.events_dir, "events"),
        (layout.snapshots_dir, "snapshots"),
    ]
    with contextlib.suppress(OSError), os.scandir(layout.reducers_dir) as entries:
        places.extend((Path(e.path), "snapshots") for e in entries if e.is_dir())
    for directory, kind in places:
        with contextlib.suppress(OSError), os.scandir(directory) as entries:
            for entry in entries:
                if classify(kind, entry.name)[0] != "temp":
                    continue
                pid = temp_pid(entry.name)
                try:
                    if pid is not None:
                        os.kill(pid, 0)
                except ProcessLookupError:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                except PermissionError:
                    continue

"""The file backend (the default): a data directory readable with `cat`, `grep` and `jq`.

Layout (the Go original's, so both can share a data directory; see `layout.py`)::

    <data dir>/
      sessions/<id>.json     the session: id, name, created_at, labels, ...
      events/<id>.jsonl      its log: one JSON event per line, sequence numbers 1..N
      snapshots/<id>.json    the default reducer's snapshot (others in snapshots/.reducers/)

One room per job: `backend.py` (the contract, thin), `layout.py` (names), `atomic.py`
(temp file + fsync + rename), `log.py` (open logs, locks, catch-up), `writes.py` and
`group.py` (the append path: a session's lines and its group commit), `commits.py`
(the commit thread, all sessions), `inbox.py` (appends waiting for it and their answers),
`syncing.py` and `aiosync.py` (fdatasync on threads or through Linux AIO), `tail.py`
(torn tails), `lines.py` (the line readers), `scan.py` (a read's events; building the
id index), `idindex.py` (a log's ids, 8 bytes each), `reading.py` (reads: bytes on a
worker, decoding on the loop in turns), `sessions.py`
(session files and the session index), `listing.py` (pages of sessions), `snapshots.py`,
`opening.py` (checks and prepares the directory) and `verify.py`. The line format is in
`agentstore.codec`; the guarantees are in docs/durability.md.
"""

from agentstore.backends.file.backend import Durability, FileBackend

__all__ = ["Durability", "FileBackend"]

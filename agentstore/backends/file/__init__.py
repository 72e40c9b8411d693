"""The file backend (the default): a data directory readable with `cat`, `grep` and `jq`.

Layout (the Go original's, so both can share a data directory; see `layout.py`)::

    <data dir>/
      sessions/<id>.json     the session: id, name, created_at, labels, ...
      events/<id>.jsonl      its log: one JSON event per line, sequence numbers 1..N
      snapshots/<id>.json    the default reducer's snapshot (others in snapshots/.reducers/)

One room per job: `backend.py` (the contract, thin), `layout.py` (names), `atomic.py`
(temp file + fsync + rename), `log.py` (open logs, catch-up), `logview.py` (what this
process knows of a log), `flocks.py` (the advisory locks), `mutex.py` (a log's mutex),
`head.py` (how far a log goes, one `fstat` when nothing changed), `changes.py` (a
session's update and deletion), `writes.py` and `group.py` (the append path: a
session's lines and its group commit), `retries.py` (what a retried batch finds
written), `commits.py` (the commit thread, all sessions), `loopcommits.py` and
`loopwatch.py` (appends committed on the event loop's thread, and their backstop),
`inbox.py` (appends waiting for the commit thread and their answers), `syncing.py` and
`aiosync.py` (fdatasync on threads or through Linux AIO), `tail.py` (torn tails),
`lines.py` (the line readers), `scan.py` (a read's events; building the id index),
`idindex.py` (a log's ids, 8 bytes each), `reading.py` (reads: bytes on a worker,
decoding on the loop in turns), `sessions.py` (session files and the session index),
`listing.py` (pages of sessions), `snapshots.py`, `opening.py` (checks and prepares the
directory) and `verify.py`. The line format is in `agentstore.codec`; the guarantees
are in docs/durability.md.
"""

from agentstore.backends.file.backend import Durability, FileBackend

__all__ = ["Durability", "FileBackend"]

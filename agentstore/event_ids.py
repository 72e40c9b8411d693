"""Event ids: random UUID4 strings for new events, stable derived ones for the Go original's.

An id makes an append idempotent (appending an id already in the session writes nothing),
so it must be unique: `new_event_id` draws it from the OS's random source, a chunk at a
time (see below).
"""

from __future__ import annotations

import os
import threading
import uuid

__all__ = ["legacy_event_id", "new_event_id"]

# Random bytes for event ids, fetched 4 KiB at a time: one getrandom() call per 256 ids.
# The lock keeps two threads from taking the same bytes; a forked child must not reuse
# its parent's buffer (it would repeat its ids), nor a lock some other thread held.
_RANDOM_CHUNK = 4096
_random_hex = ""
_random_pos = 0
_random_lock = threading.Lock()


def _reset_random() -> None:
    global _random_hex, _random_pos, _random_lock
    _random_hex, _random_pos, _random_lock = "", 0, threading.Lock()


os.register_at_fork(after_in_child=_reset_random)


def new_event_id() -> str:
    """Return a random UUID4 string (faster than `str(uuid.uuid4())`, same format)."""
    global _random_hex, _random_pos
    with _random_lock:
        pos = _random_pos
        if pos >= len(_random_hex):
            _random_hex, pos = os.urandom(_RANDOM_CHUNK).hex(), 0
        _random_pos = pos + 32
        h = _random_hex[pos : pos + 32]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def legacy_event_id(session_id: str, sequence_number: int) -> str:
    """Derive a stable id for an event written without one (the Go original)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentstore:{session_id}/{sequence_number}"))

"""How LangGraph checkpoints and writes are laid out as agentstore events, and read back.

`AgentStoreSaver` appends one `langgraph_checkpoint` event per checkpoint and one
`langgraph_writes` event per task's writes; `ThreadIndex` folds a thread's events into
what the saver looks up (checkpoints, channel values by version, pending writes).
Framework-free: the values stay as the serializer's `(type, bytes)` pairs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from agentstore.events import Event

__all__ = [
    "CHECKPOINT_EVENT",
    "WRITES_EVENT",
    "StoredCheckpoint",
    "ThreadIndex",
    "Typed",
    "decode",
    "encode",
]

CHECKPOINT_EVENT = "langgraph_checkpoint"
"""The event type of a stored checkpoint."""
WRITES_EVENT = "langgraph_writes"
"""The event type of a task's pending writes against a checkpoint."""

Typed = tuple[str, bytes]


def encode(typed: Typed) -> dict[str, str]:
    """Return a serializer's `(type, bytes)` as JSON: `{"t": type, "b": base64}`."""
    return {"t": typed[0], "b": base64.b64encode(typed[1]).decode("ascii")}


def decode(obj: Any) -> Typed:
    """Return the `(type, bytes)` that `encode` made."""
    return str(obj["t"]), base64.b64decode(obj["b"])


@dataclass
class StoredCheckpoint:
    """A checkpoint without its channel values, its metadata, and its parent's id."""

    checkpoint: Typed
    metadata: Typed
    parent_id: str | None


@dataclass
class ThreadIndex:
    """What one thread's session holds, folded from its events up to `last_seq`."""

    last_seq: int = 0
    last_id: str | None = None
    """The id of event `last_seq`: if the session holds another there, it was made again."""
    # (ns, checkpoint id) -> checkpoint without channel values
    checkpoints: dict[tuple[str, str], StoredCheckpoint] = field(default_factory=dict)
    # (ns, channel, version) -> serialized value
    blobs: dict[tuple[str, str, str], Typed] = field(default_factory=dict)
    # (ns, checkpoint id) -> (task id, idx) -> (task id, channel, value, task path)
    writes: dict[tuple[str, str], dict[tuple[str, int], tuple[str, str, Typed, str]]] = field(
        default_factory=dict
    )

    def fold(self, event: Event) -> None:
        """Take in the next event of the thread's session (others are skipped)."""
        if event.sequence_number <= self.last_seq:
            return  # already folded by a concurrent refresh
        self.last_seq, self.last_id = event.sequence_number, event.id
        p = event.payload
        if event.type == CHECKPOINT_EVENT:
            ns, cid = p["checkpoint_ns"], p["checkpoint_id"]
            for channel, blob in p["blobs"].items():
                self.blobs[(ns, channel, str(blob["version"]))] = decode(blob)
            self.checkpoints[(ns, cid)] = StoredCheckpoint(
                decode(p["checkpoint"]), decode(p["metadata"]), p.get("parent_checkpoint_id")
            )
        elif event.type == WRITES_EVENT:
            key = (p["checkpoint_ns"], p["checkpoint_id"])
            stored = self.writes.setdefault(key, {})
            for w in p["writes"]:
                inner = (p["task_id"], int(w["idx"]))
                # Regular writes are kept once (a retried task writes them again);
                # special channels (error, interrupt...) keep the latest.
                if inner[1] >= 0 and inner in stored:
                    continue
                stored[inner] = (p["task_id"], w["channel"], decode(w["value"]), p["task_path"])

"""A LangGraph checkpointer on agentstore: a graph's state history is an agentstore session.

```python
from agentstore.integrations.langgraph import AgentStoreSaver

graph = builder.compile(checkpointer=AgentStoreSaver(store))
await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1"}})
```

Each thread is one session (`thread_session_id(thread_id)`: the thread id itself when
it is a valid session id), created on first use. `aput` appends a `langgraph_checkpoint`
event, `aput_writes` a `langgraph_writes` event; nothing is ever rewritten, so the log is
the thread's full, replayable history. Payloads hold the checkpoint, its metadata and the
channel values that changed, each encoded by the saver's LangGraph serializer
(`{"t": type, "b": base64 bytes}`), plus plain `step`, `source` and ids for reading with
`agentstore replay` or `jq`. A checkpoint's full channel values are rebuilt from the
latest value of each channel version, as LangGraph's own savers do.

Only the async methods are implemented (`graph.ainvoke`, `astream`, `aget_state`): the
sync ones raise `NotImplementedError`. `adelete_thread` deletes the whole session,
including what `AgentStoreCallbackHandler` recorded in it. The saver keeps a per-thread
index of what it has read and reads only the events appended since (and the last one it
read again: a thread deleted and made again behind its back, by another saver or
process, is read anew, never continued from the deleted checkpoints).

Needs `pip install 'agentstore[langchain]'`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from agentstore.errors import InvalidInputError, SessionNotFoundError
from agentstore.events import new_event
from agentstore.integrations._appender import check_async_store
from agentstore.integrations._langgraph_log import (
    CHECKPOINT_EVENT,
    WRITES_EVENT,
    ThreadIndex,
    encode,
)
from agentstore.integrations._threads import ensure_session, thread_session_id
from agentstore.store import Store

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_metadata,
        writes_sort_key,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "agentstore.integrations.langgraph needs LangGraph: pip install 'agentstore[langchain]'"
    ) from exc

__all__ = ["CHECKPOINT_EVENT", "WRITES_EVENT", "AgentStoreSaver"]


def _configurable(config: RunnableConfig | None) -> dict[str, Any]:
    if not isinstance(config, dict) or not isinstance(config.get("configurable"), dict):
        raise InvalidInputError(
            'a LangGraph config needs {"configurable": {"thread_id": ...}}, got '
            f"{config!r:.200}"
        )
    conf: dict[str, Any] = config["configurable"]
    if conf.get("thread_id") is None:
        raise InvalidInputError(
            'the config has no thread_id: pass {"configurable": {"thread_id": "..."}} '
            "to checkpoint a graph"
        )
    return conf


class AgentStoreSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpointer that stores checkpoints and writes as agentstore events."""

    def __init__(self, store: Store, *, serde: SerializerProtocol | None = None) -> None:
        """Checkpoint into `store`; `serde` defaults to LangGraph's `JsonPlusSerializer`."""
        super().__init__(serde=serde)
        check_async_store(store)
        self.store = store
        """The store the threads are recorded in."""
        self._index: dict[str, ThreadIndex] = {}
        self._known: set[str] = set()

    # --- helpers ---------------------------------------------------------------------

    async def _session_for_write(self, thread_id: Any) -> str:
        sid = thread_session_id(thread_id)
        if sid not in self._known:
            labels = {"framework": "langgraph", "thread_id": str(thread_id)}
            await ensure_session(self.store, sid, name=f"langgraph {thread_id}", labels=labels)
            self._known.add(sid)
        return sid

    async def _read(self, thread_id: Any) -> ThreadIndex | None:
        """Bring the thread's index up to date; None if the thread has no session."""
        sid = thread_session_id(thread_id)
        index = self._index.get(sid)
        # From the last event folded (again): if it is gone or another, the thread was
        # deleted since (and made again, by another saver or process): start over, or the
        # deleted checkpoints would be served, and written on from, again.
        seen, seen_id = (index.last_seq, index.last_id) if index is not None else (0, None)
        try:
            events = await self.store.get_events(sid, from_seq=max(seen, 1))
            if seen and (not events or events[0].id != seen_id):
                self._index.pop(sid, None)
                index = None
                events = await self.store.get_events(sid)
        except SessionNotFoundError:
            self._index.pop(sid, None)
            self._known.discard(sid)
            return None
        if index is None:
            index = self._index.setdefault(sid, ThreadIndex())
        for event in events:
            index.fold(event)
        return index

    def _tuple(self, thread_id: Any, ns: str, cid: str, index: ThreadIndex) -> CheckpointTuple:
        stored = index.checkpoints[(ns, cid)]
        checkpoint: Checkpoint = self.serde.loads_typed(stored.checkpoint)
        values: dict[str, Any] = {}
        for channel, version in checkpoint["channel_versions"].items():
            blob = index.blobs.get((ns, channel, str(version)))
            if blob is not None and blob[0] != "empty":
                values[channel] = self.serde.loads_typed(blob)
        writes = index.writes.get((ns, cid), {})
        ordered = sorted(writes.items(), key=lambda kv: writes_sort_key(kv[1][3], *kv[0]))
        parent = (
            {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": stored.parent_id,
                }
            }
            if stored.parent_id
            else None
        )
        return CheckpointTuple(
            config={
                "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
            },
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self.serde.loads_typed(stored.metadata),
            parent_config=parent,  # type: ignore[arg-type]
            pending_writes=[
                (t, c, self.serde.loads_typed(v)) for t, c, v, _ in (w for _, w in ordered)
            ],
        )

    # --- the checkpointer contract ----------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Return the checkpoint `config` names, or the thread's latest; None if absent."""
        conf = _configurable(config)
        thread_id, ns = conf["thread_id"], conf.get("checkpoint_ns", "")
        index = await self._read(thread_id)
        if index is None:
            return None
        cid = conf.get("checkpoint_id")
        if cid is None:
            ids = [c for (n, c) in index.checkpoints if n == ns]
            if not ids:
                return None
            cid = max(ids)  # checkpoint ids are time-ordered (uuid6)
        elif (ns, cid) not in index.checkpoints:
            return None
        return self._tuple(thread_id, ns, cid, index)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Yield checkpoints newest first: of one thread (and namespace) or of every thread.

        `filter` keeps checkpoints whose metadata has all its key/value pairs, `before`
        those older than its checkpoint id, `limit` caps how many are yielded.
        """
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be a non-negative int, got {limit!r}")
        before_id = _configurable(before).get("checkpoint_id") if before is not None else None
        if config is not None:
            conf = _configurable(config)
            thread_ids: list[Any] = [conf["thread_id"]]
            ns_filter: str | None = conf.get("checkpoint_ns")
            cid_filter: str | None = conf.get("checkpoint_id")
        else:
            thread_ids = await self._all_thread_ids()
            ns_filter = cid_filter = None
        remaining = limit
        for thread_id in thread_ids:
            index = await self._read(thread_id)
            if index is None:
                continue
            keys = sorted(index.checkpoints, key=lambda k: k[1], reverse=True)
            for ns, cid in keys:
                if remaining is not None and remaining <= 0:
                    return
                if ns_filter is not None and ns != ns_filter:
                    continue
                if cid_filter is not None and cid != cid_filter:
                    continue
                if before_id is not None and cid >= before_id:
                    continue
                tup = self._tuple(thread_id, ns, cid, index)
                if filter and any(tup.metadata.get(k) != v for k, v in filter.items()):
                    continue
                yield tup
                if remaining is not None:
                    remaining -= 1

    async def _all_thread_ids(self) -> list[str]:
        out: list[str] = []
        offset = 0
        while True:
            page = await self.store.list_sessions(
                labels={"framework": "langgraph"}, limit=100, offset=offset
            )
            out.extend(s.labels["thread_id"] for s in page if "thread_id" in s.labels)
            if len(page) < 100:
                return out
            offset += 100

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Append the checkpoint (and the channel values that changed) to the thread."""
        conf = _configurable(config)
        thread_id, ns = conf["thread_id"], conf.get("checkpoint_ns", "")
        values = checkpoint.get("channel_values", {})
        rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        blobs = {
            channel: {
                "version": version,
                **encode(
                    self.serde.dumps_typed(values[channel]) if channel in values else ("empty", b"")
                ),
            }
            for channel, version in new_versions.items()
        }
        meta = get_checkpoint_metadata(config, metadata)
        payload = {
            "thread_id": str(thread_id),
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": conf.get("checkpoint_id"),
            "step": meta.get("step"),
            "source": meta.get("source"),
            "checkpoint": encode(self.serde.dumps_typed(rest)),
            "metadata": encode(self.serde.dumps_typed(meta)),
            "blobs": blobs,
        }
        sid = await self._session_for_write(thread_id)
        await self.store.append(sid, new_event(CHECKPOINT_EVENT, payload))
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Append a task's writes against the checkpoint `config` names."""
        conf = _configurable(config)
        thread_id, ns = conf["thread_id"], conf.get("checkpoint_ns", "")
        cid = conf.get("checkpoint_id")
        if cid is None:
            raise InvalidInputError("put_writes needs the config of a stored checkpoint")
        index = await self._read(thread_id)
        already = index.writes.get((ns, cid), {}) if index is not None else {}
        encoded = []
        for idx, (channel, value) in enumerate(writes):
            key = WRITES_IDX_MAP.get(channel, idx)
            if key >= 0 and (task_id, key) in already:
                continue  # a retry: the write is stored once
            encoded.append(
                {"idx": key, "channel": channel, "value": encode(self.serde.dumps_typed(value))}
            )
        if not encoded:
            return
        payload = {
            "thread_id": str(thread_id),
            "checkpoint_ns": ns,
            "checkpoint_id": cid,
            "task_id": task_id,
            "task_path": task_path,
            "writes": encoded,
        }
        sid = await self._session_for_write(thread_id)
        await self.store.append(sid, new_event(WRITES_EVENT, payload))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread's session (checkpoints, writes and anything else recorded in it)."""
        sid = thread_session_id(thread_id)
        self._index.pop(sid, None)
        self._known.discard(sid)
        with contextlib.suppress(SessionNotFoundError):
            await self.store.delete_session(sid)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another (one atomic append)."""
        source = thread_session_id(source_thread_id)
        try:
            events = await self.store.replay(source, types=[CHECKPOINT_EVENT, WRITES_EVENT])
        except SessionNotFoundError:
            return
        if not events:
            return
        copies = [
            new_event(e.type, {**e.payload, "thread_id": str(target_thread_id)}) for e in events
        ]
        sid = await self._session_for_write(target_thread_id)
        await self.store.append_many(sid, copies)

    # --- sync methods: not supported -----------------------------------------------------

    def _sync(self) -> NotImplementedError:
        return NotImplementedError(
            "AgentStoreSaver is async-only: run the graph with ainvoke/astream "
            "(and aget_state / aupdate_state)"
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Not supported: use `aget_tuple` (the saver is async-only)."""
        raise self._sync()

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Not supported: use `alist` (the saver is async-only)."""
        raise self._sync()

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Not supported: use `aput` (the saver is async-only)."""
        raise self._sync()

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Not supported: use `aput_writes` (the saver is async-only)."""
        raise self._sync()

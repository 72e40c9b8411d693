"""A store that only writes folds its session's log once for its snapshots, not each time.

When a snapshot falls due and the store has no cached state (it never read the session),
the state is folded from the log for the snapshot; that state, brought up to date with
what the store appended meanwhile, becomes the cached state, so the appends after it fold
into it and the next snapshots are taken from it. (On PostgreSQL, reading 100 events back
at every snapshot cost a third of `append_many` of 100.) The cached state must always be
the state a full fold gives: another writer, or a caller changing what it got back, must
never leak into it.
"""

from __future__ import annotations

import anyio
from anyio import wait_all_tasks_blocked

from agentstore import EventType, Metadata, State, Store, new_event
from agentstore.backends.base import EventFilter, SnapshotRecord
from agentstore.events import Event
from tests.test_append_path import SuspendingMemory


class CountingReads(SuspendingMemory):
    """Memory whose appends suspend (as an I/O backend's do), counting reads of events."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.hold = False
        self.held = anyio.Event()
        self.release = anyio.Event()

    async def read(self, session_id: str, flt: EventFilter) -> list[Event]:
        self.reads += 1
        return await super().read(session_id, flt)

    async def save_snapshot(self, snapshot: SnapshotRecord) -> None:
        if self.hold:
            self.held.set()
            await self.release.wait()
        await super().save_snapshot(snapshot)


def _llm(tokens: int) -> object:
    return new_event(EventType.LLM_RESPONSE, {"t": tokens}, metadata=Metadata(tokens_in=tokens))


async def _truth(backend: CountingReads, sid: str) -> State:
    async with Store(backend, snapshot_interval=0, cache_size=0) as fresh:
        return await fresh.get_state(sid)


async def test_a_writing_store_reads_its_log_back_once_not_at_every_snapshot() -> None:
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as store:
        sid = (await store.create_session()).id
        for i in range(60):
            await store.append(sid, _llm(i))
        await wait_all_tasks_blocked()  # the snapshot writes done
        reads = backend.reads
        assert reads <= 2, f"{reads} reads of the log for 6 snapshots"
        state = await store.get_state(sid)
        assert backend.reads == reads  # hot: the adopted state is at the head
        assert state.model_dump() == (await _truth(backend, sid)).model_dump()
        assert (await backend.load_snapshot(sid, store._states.reducer_id)).version == 60  # type: ignore[union-attr]


async def _held_snapshot(store: Store, backend: CountingReads, sid: str) -> None:
    """Append up to the first snapshot and hold its write (the state folded, not adopted)."""
    backend.hold = True
    for i in range(10):
        await store.append(sid, _llm(i))
    await backend.held.wait()


async def test_another_writer_in_between_breaks_the_adoption_off() -> None:
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as a, Store(backend) as b:
        sid = (await a.create_session()).id
        await _held_snapshot(a, backend, sid)
        await a.append(sid, _llm(100))
        await b.append(sid, _llm(1000))  # a does not see this one
        await a.append(sid, _llm(10000))
        backend.release.set()
        await a.verify(sid)
        truth = await _truth(backend, sid)
        assert truth.tokens.input == sum(range(10)) + 11100
        assert (await a.get_state(sid)).model_dump() == truth.model_dump()


async def test_a_caller_changing_what_it_got_back_does_not_reach_the_state() -> None:
    backend = CountingReads()
    async with Store(backend, snapshot_interval=10) as store:
        sid = (await store.create_session()).id
        await _held_snapshot(store, backend, sid)
        got = await store.append(sid, _llm(5))
        got.metadata.tokens_in = 999_999
        got.payload["t"] = 999_999
        backend.release.set()
        await wait_all_tasks_blocked()
        reads = backend.reads
        state = await store.get_state(sid)
        assert backend.reads == reads  # the adopted state was used
        assert state.tokens.input == sum(range(10)) + 5
        assert state.model_dump() == (await _truth(backend, sid)).model_dump()

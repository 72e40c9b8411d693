"""The shortcuts the hot paths take keep the guarantees users rely on.

- Event ids come from a shared random buffer: never repeated across threads or a fork.
- (The commit thread's own rules: cancelled callers, failed syncs, closing: see
  tests/durability/test_group_commit.py.)
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
import warnings

import pytest

from agentstore.events import new_event_id


def test_event_ids_are_unique_uuid4s_across_threads() -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [new_event_id() for _ in range(5000)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 40_000
    for value in ids[:2000]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_event_id()  # fill the buffer before forking
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads; the child only
        # makes ids and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, "".join(new_event_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as handle:
        child = handle.read().decode()
    parent = "".join(new_event_id() for _ in range(10))
    child_ids = {child[i : i + 36] for i in range(0, len(child), 36)}
    parent_ids = {parent[i : i + 36] for i in range(0, len(parent), 36)}
    assert len(child_ids) == 10
    assert not child_ids & parent_ids


def test_default_reducer_fast_path_matches_attribute_assignment() -> None:
    """The reducer's direct field writes give the state pydantic's setattr would."""
    import random
    from datetime import UTC, datetime

    from agentstore import Metadata, State, default_reducer
    from agentstore.events import build_event
    from agentstore.state import _reduce_slow

    kinds = [
        "user_message",
        "tool_called",
        "tool_result",
        "llm_request",
        "llm_response",
        "error",
        "custom",
        "cache_hit",
    ]
    rng = random.Random(7)
    for _ in range(50):
        fast, slow = State(session_id="s"), State(session_id="s")
        for seq in range(1, 40):
            meta = Metadata(
                tokens_in=rng.choice([None, 0, 5]),
                tokens_out=rng.choice([None, 3]),
                cost_usd=rng.choice([None, 0.25]),
                call_id=rng.choice([None, "c1", "c2"]),
                tool_name="search",
                model="m",
            )
            event = build_event(
                f"e{seq}", "s", seq, rng.choice(kinds), {"n": seq}, datetime.now(UTC), meta
            )
            fast = default_reducer(fast, event)
            slow = _reduce_slow(slow, event)
        assert fast.model_dump() == slow.model_dump()
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.tokens.model_fields_set == slow.tokens.model_fields_set


async def test_a_long_memory_read_lets_other_tasks_run_and_stays_consistent() -> None:
    import agentstore
    from agentstore import new_event

    async with agentstore.open(in_memory=True) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"i": i}) for i in range(2500)])
        ran: list[int] = []

        async def meanwhile() -> None:
            ran.append(1)
            await store.append(sid, new_event("custom", {"i": "late"}))

        task = asyncio.create_task(meanwhile())
        events = await store.replay(sid)
        assert ran, "the event loop got a turn during a 2,500-event read"
        assert [e.sequence_number for e in events] == list(range(1, 2501))
        await task
        state = await store.get_state(sid)
        assert state.event_count == 2501

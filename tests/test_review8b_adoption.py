"""Review 8b: a snapshot a store folds itself (`StateKeeper.save_snapshot`, its cache not
at the version) is adopted into the cache when done, with the events the store appended
meanwhile (`_adopt`). b7be2fe keeps a fold that found the session made anew midway out of
the cache in `current_locked`; the snapshot's fold had no such guard. If the session was
deleted and made again elsewhere while it folded, and this store appended to the new
session up to the same version (a new adoption, with the same base), the old session's
fold was adopted as the new session's state."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anyio

import agentstore
from agentstore import SessionNotFoundError, Store, new_event
from agentstore.backends.file import FileBackend
from agentstore.events import Event
from agentstore.state import State, default_reducer
from agentstore.testing.conformance.builders import comparable, fold, llm

_N = 2000  # the snapshot interval, and both sessions' length: two pages of a fold
_other: list[Any] = []  # (the other host's SyncStore, the new session's events)
_midway = anyio.Event()
_done = False


def _remaking_reducer(state: State, event: Event) -> State:
    """The default reducer. At event 1001 of a fold (its last page, read already) it has
    the other host delete the session and make it again, `_N - 1` events long; then,
    until this store has appended to the new session (`_done`), the fold is slow (as on a
    loaded machine): it takes a turn of the loop at each slice, and that append gets in."""
    if event.sequence_number == 1001 and _other:
        other, new = _other.pop()
        other.delete_session(event.session_id)
        other.create_session(session_id=event.session_id)
        other.append_many(event.session_id, new)
        _midway.set()
    elif event.sequence_number > 1001 and _midway.is_set() and not _done:
        time.sleep(0.0005)  # a slow fold: past its turn at every slice
    return default_reducer(state, event)


async def test_a_snapshot_fold_across_the_session_made_anew_is_not_adopted(
    tmp_path: Path,
) -> None:
    # Adoption is for backends whose appends suspend (not the memory backend's).
    global _midway, _done
    _midway, _done = anyio.Event(), False
    data = tmp_path / "data"
    sid = f"again-{uuid.uuid4().hex[:12]}"
    a = await Store(FileBackend(data), reducer=_remaking_reducer, snapshot_interval=_N)
    try:
        with agentstore.open_sync(data, snapshot_interval=0) as b:
            b.create_session(session_id=sid)
            b.append_many(sid, [llm(tokens_in=1, tokens_out=0, cost=0) for _ in range(_N - 1)])
            _other.append((b, [new_event("custom", {"n": n}) for n in range(_N - 1)]))

            async def made_anew() -> None:
                global _done
                await _midway.wait()
                last = new_event("custom", {"n": "last"})  # a's: the snapshot at _N due again
                try:
                    await a.append(sid, last)
                except SessionNotFoundError:  # once, as it notices (docs/durability.md)
                    await a.append(sid, last)
                _done = True

            async with anyio.create_task_group() as tg:
                tg.start_soon(made_anew)
                # The old session's event _N: a snapshot due, folded behind the append (a
                # has nothing cached), while the session is made anew.
                await a.append(sid, llm(tokens_in=1, tokens_out=0, cost=0))
            events = b.get_events(sid)
        assert comparable(await a.get_state(sid)) == comparable(fold(sid, events))
    finally:
        await a.close()
    async with await Store(FileBackend(data), snapshot_interval=_N) as cold:
        assert comparable(await cold.get_state(sid)) == comparable(fold(sid, events))

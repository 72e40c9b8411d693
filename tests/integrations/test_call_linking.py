"""Tool-call ids that repeat: a result closes the nearest open call with its id.

Providers reuse ids across responses ("call_0" in every turn), and an interrupted run
leaves calls with no result. The rule (`State.open_calls`): a call whose id is already
open is kept beside it as "<id>#<sequence_number>", and a result (or error) closes the
latest open call with that id, so an orphan of an earlier run stays visible instead of
swallowing the next run's result. Checked on every backend, hot and cold (reopened,
from a snapshot), and against a small reference model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentstore
from agentstore import Event, EventType, Metadata, State, Store, default_reducer, new_event

Opener = Callable[..., Awaitable[Store]]


@pytest.fixture(params=["memory", "file"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Open a store on one location; calling it again reopens the same data (a cold read)."""
    opened: list[Store] = []
    memory: Store | None = None

    async def opener(**kwargs: object) -> Store:
        nonlocal memory
        if request.param == "memory":
            # A memory store cannot be reopened: reuse it (the hot path).
            if memory is None:
                memory = await agentstore.open(in_memory=True, **kwargs)  # type: ignore[arg-type]
                opened.append(memory)
            return memory
        store = await agentstore.open(tmp_path / "data", **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield opener
    for store in opened:
        await store.close()


def call(tool: str, call_id: str) -> Event:
    return new_event(EventType.TOOL_CALLED, {"tool": tool}).with_metadata(
        Metadata(tool_name=tool, call_id=call_id)
    )


def result(call_id: str) -> Event:
    return new_event(EventType.TOOL_RESULT, {"result": "ok"}).with_metadata(
        Metadata(call_id=call_id)
    )


def failure(call_id: str) -> Event:
    return new_event(EventType.ERROR, {"error": "boom"}).with_metadata(Metadata(call_id=call_id))


def open_view(state: State) -> dict[str, tuple[int, str | None]]:
    return {key: (c.sequence_number, c.name) for key, c in state.open_calls.items()}


async def test_orphan_of_an_interrupted_run_stays_open(open_store: Opener) -> None:
    store = await open_store()
    session = await store.create_session()
    # Run 1 asks for a tool and dies before the result.
    await store.append(session.id, call("search", "call_0"))
    # Run 2 (same session, the provider numbers its calls from 0 again) completes its call.
    await store.append(session.id, call("book", "call_0"))
    await store.append(session.id, result("call_0"))
    state = await store.get_state(session.id)
    assert open_view(state) == {"call_0": (1, "search")}
    reopened = await open_store()
    assert open_view(await reopened.get_state(session.id)) == {"call_0": (1, "search")}


async def test_repeated_id_while_open_is_kept_beside_it(open_store: Opener) -> None:
    store = await open_store()
    session = await store.create_session()
    await store.append_many(
        session.id, [call("a", "call_0"), call("b", "call_0"), call("c", "call_0")]
    )
    state = await store.get_state(session.id)
    assert open_view(state) == {"call_0": (1, "a"), "call_0#2": (2, "b"), "call_0#3": (3, "c")}
    # Results close the latest first; an error closes a call just as a result does.
    await store.append(session.id, result("call_0"))
    assert open_view(await store.get_state(session.id)) == {
        "call_0": (1, "a"),
        "call_0#2": (2, "b"),
    }
    await store.append(session.id, failure("call_0"))
    assert open_view(await store.get_state(session.id)) == {"call_0": (1, "a")}
    await store.append(session.id, result("call_0"))
    assert open_view(await store.get_state(session.id)) == {}
    # Once nothing with the id is open, the next call gets the plain id again.
    await store.append(session.id, call("d", "call_0"))
    assert open_view(await store.get_state(session.id)) == {"call_0": (7, "d")}


async def test_ids_are_per_session(open_store: Opener) -> None:
    store = await open_store()
    first = await store.create_session()
    second = await store.create_session()
    await store.append(first.id, call("a", "call_0"))
    # A result for the same id in another session closes nothing here.
    await store.append(second.id, result("call_0"))
    assert open_view(await store.get_state(first.id)) == {"call_0": (1, "a")}
    assert open_view(await store.get_state(second.id)) == {}


async def test_id_containing_a_hash_is_not_mistaken_for_a_repeat(open_store: Opener) -> None:
    store = await open_store()
    session = await store.create_session()
    await store.append(session.id, call("a", "x"))
    await store.append(session.id, call("b", "x#9"))  # its own id, not a repeat of "x"
    await store.append(session.id, call("c", "x"))  # seq 3: a repeat, keyed "x#3"
    await store.append(session.id, result("x"))  # closes "x#3", not "x#9"
    await store.append(session.id, result("x"))  # closes "x"
    state = await store.get_state(session.id)
    assert open_view(state) == {"x#9": (2, "b")}
    assert state.open_calls["x#9"].call_id == "x#9"


async def test_cold_state_from_a_snapshot_links_the_same_way(open_store: Opener) -> None:
    store = await open_store(snapshot_interval=2)
    session = await store.create_session()
    events = [call("a", "c"), call("b", "c"), call("c", "c"), result("c"), call("d", "c")]
    await store.append_many(session.id, events[:3])
    await store.append_many(session.id, events[3:])
    hot = open_view(await store.get_state(session.id))
    assert hot == {"c": (1, "a"), "c#2": (2, "b"), "c#5": (5, "d")}
    reopened = await open_store(snapshot_interval=2)
    assert open_view(await reopened.get_state(session.id)) == hot
    assert open_view(await reopened.get_state(session.id, at_seq=4)) == {
        "c": (1, "a"),
        "c#2": (2, "b"),
    }


# A reference model: a stack of open calls per id, a result pops the top.
steps = st.lists(
    st.tuples(st.sampled_from(["call", "result", "error"]), st.sampled_from(["a", "b", "a#2"])),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_default_reducer_matches_the_reference_model(script: list[tuple[str, str]]) -> None:
    state = State(session_id="s")
    stacks: dict[str, list[int]] = {}
    for seq, (action, call_id) in enumerate(script, start=1):
        event = call("t", call_id) if action == "call" else result(call_id)
        if action == "error":
            event = failure(call_id)
        stored = event.model_copy(update={"session_id": "s", "sequence_number": seq})
        state = default_reducer(state, stored)
        if action == "call":
            stacks.setdefault(call_id, []).append(seq)
        elif stacks.get(call_id):
            stacks[call_id].pop()
    expected = sorted((cid, seq) for cid, seqs in stacks.items() for seq in seqs)
    got = sorted((c.call_id, c.sequence_number) for c in state.open_calls.values())
    assert got == expected
    # The oldest open call of an id is under the id itself (ids with "#" may find their
    # key taken by a repeat of another id: they are then keyed as repeats too).
    for cid, seqs in stacks.items():
        if seqs and "#" not in cid:
            assert state.open_calls[cid].sequence_number == seqs[0]

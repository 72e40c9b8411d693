"""Property test: random sequences of operations on the file store agree with a simple model.

The model is a dict of sessions to lists of (id, type, payload, tokens). Operations:
create, append (sometimes a retry of an earlier id, sometimes with `expected_seq`),
append_many (sometimes with an invalid event: all or nothing), get_state (current and
`at_seq`), delete, reopen with another snapshot interval or durability, and a crash that
leaves a torn tail.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentstore
from agentstore import (
    ConcurrencyError,
    InvalidEventError,
    SessionExistsError,
    SessionNotFoundError,
    State,
    default_reducer,
    new_event,
)

SESSIONS = ("s0", "s1", "s2")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
types = st.sampled_from(
    ["user_message", "llm_request", "llm_response", "tool_called", "error", "cache_hit"]
)
tokens = st.none() | st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), st.floats(0, 1))
sessions = st.sampled_from(SESSIONS)
new_events = st.tuples(types, json_values, tokens)

operations = st.one_of(
    st.tuples(st.just("create"), sessions),
    st.tuples(st.just("append"), sessions, new_events, st.integers(0, 3)),
    st.tuples(st.just("retry"), sessions, st.integers(0, 50)),
    st.tuples(st.just("expected"), sessions, new_events, st.integers(-1, 1)),
    st.tuples(st.just("append_many"), sessions, st.lists(new_events, max_size=5), st.booleans()),
    st.tuples(st.just("state"), sessions, st.integers(0, 60)),
    st.tuples(st.just("delete"), sessions),
    st.tuples(
        st.just("reopen"),
        st.sampled_from([0, 1, 2, 3, 100]),
        st.sampled_from(["fsync", "flush"]),
    ),
    st.tuples(st.just("crash"), sessions, st.binary(min_size=1, max_size=40)),
)

Model = dict[str, list[tuple[str, str, Any, Any]]]


def _event(spec: tuple[str, Any, Any]) -> agentstore.Event:
    kind, payload, tok = spec
    event = new_event(kind, payload)
    if tok is not None:
        event.with_metadata(tokens_in=tok[0], tokens_out=tok[1], cost_usd=tok[2])
    return event


def _record(event: agentstore.Event) -> tuple[str, str, Any, Any]:
    meta = event.metadata
    tok = None if meta.tokens_in is None else (meta.tokens_in, meta.tokens_out, meta.cost_usd)
    return (event.id, str(event.type), event.payload, tok)


async def _check(store: agentstore.Store, model: Model, sid: str, at: int | None) -> None:
    if sid not in model:
        try:
            await store.get_events(sid)
        except SessionNotFoundError:
            return
        raise AssertionError(f"{sid} should not exist")
    events = await store.get_events(sid)
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    assert [_record(e) for e in events] == model[sid]
    state = await store.get_state(sid)
    folded = State(session_id=sid)
    for event in events:
        folded = default_reducer(folded, event)
    assert state.model_dump() == folded.model_dump()
    if at is not None and model[sid]:
        n = at % (len(events) + 1)
        partial = State(session_id=sid)
        for event in events[:n]:
            partial = default_reducer(partial, event)
        assert (await store.get_state(sid, at_seq=n)).model_dump() == partial.model_dump()


async def _run(path: Path, ops: list[tuple[Any, ...]]) -> None:
    model: Model = {}
    interval, durability = 100, "fsync"
    store = await agentstore.open(path, snapshot_interval=interval, durability=durability)
    try:
        for op in ops:
            kind = op[0]
            if kind == "create":
                try:
                    await store.create_session(session_id=op[1])
                except SessionExistsError:
                    assert op[1] in model
                else:
                    assert op[1] not in model
                    model[op[1]] = []
            elif kind in ("append", "expected"):
                sid, spec = op[1], op[2]
                expected = None if kind == "append" else max(0, len(model.get(sid, [])) + op[3])
                event = _event(spec)
                try:
                    stored = await store.append(sid, event, expected_seq=expected)
                except SessionNotFoundError:
                    assert sid not in model
                except ConcurrencyError:
                    assert expected != len(model[sid])
                else:
                    assert expected in (None, len(model[sid]))
                    model[sid].append(_record(event))
                    assert stored.sequence_number == len(model[sid])
            elif kind == "retry":
                sid = op[1]
                if model.get(sid):
                    index = op[2] % len(model[sid])
                    original = model[sid][index]
                    again = _event((original[1], original[2], original[3]))
                    object.__setattr__(again, "id", original[0])
                    stored = await store.append(sid, again)
                    assert stored.sequence_number == index + 1  # nothing new written
            elif kind == "append_many":
                sid, specs, poison = op[1], op[2], op[3]
                batch = [_event(spec) for spec in specs]
                if poison:
                    batch.insert(len(batch) // 2, new_event("custom", {"bad": math.nan}))
                try:
                    stored_many = await store.append_many(sid, batch)
                except SessionNotFoundError:
                    assert sid not in model
                except InvalidEventError:
                    assert poison
                else:
                    assert not poison and sid in model
                    start = len(model[sid]) + 1
                    model[sid] += [_record(e) for e in batch]
                    assert [e.sequence_number for e in stored_many] == list(
                        range(start, start + len(batch))
                    )
            elif kind == "state":
                await _check(store, model, op[1], op[2])
            elif kind == "delete":
                try:
                    await store.delete_session(op[1])
                except SessionNotFoundError:
                    assert op[1] not in model
                else:
                    del model[op[1]]
            elif kind in ("reopen", "crash"):
                await store.close()
                if kind == "crash":
                    log = path / "events" / f"{op[1]}.jsonl"
                    if log.exists():
                        with log.open("ab") as handle:
                            handle.write(op[2].replace(b"\n", b" "))
                else:
                    interval, durability = op[1], op[2]
                store = await agentstore.open(
                    path, snapshot_interval=interval, durability=durability
                )
        for sid in SESSIONS:
            await _check(store, model, sid, None)
        report = await store.verify()
        assert report.ok, [str(p) for p in report.problems]
    finally:
        await store.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=st.lists(operations, max_size=30))
def test_store_agrees_with_a_simple_model(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(_run, Path(tmp) / "data", ops)

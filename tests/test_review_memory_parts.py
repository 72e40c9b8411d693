"""Review of the memory backend's metadata parts and shared empty columns.

The memory backend keeps each event's metadata taken apart (`metadata_parts`) and gives a
session with no events one shared empty tuple per column. What comes back must equal
what was appended (unknown keys, `extra`, explicit None fields, integer costs, the fields
set), share nothing with the store, and sessions with no events must fork, import, prune,
delete and take their first events independently of each other.
"""

from __future__ import annotations

from datetime import timedelta

import agentstore
from agentstore import Event, EventType, Metadata, Store, new_event

METAS = [
    Metadata(),
    Metadata(model="m", tokens_in=None),  # an explicit None beside a value
    Metadata(cost_usd=1),  # an int cost
    Metadata(cost_usd=0.25, extra={"k": "v"}),
    Metadata(extra={}),
    Metadata.model_validate({"custom": {"a": [1]}, "other": None, "tool_name": "t"}),
    Metadata(
        worker_id="w",
        tokens_in=1,
        tokens_out=2,
        model="x",
        tool_name="t",
        duration_ms=3,
        cost_usd=0.5,
        call_id="c",
        cache_read_tokens=4,
        cache_write_tokens=5,
        reasoning_tokens=6,
        provider="p",
        extra={"a": "b", "c": "d"},
    ),
]


def _events() -> list[Event]:
    # Copies: an append's result holds the metadata object it was given (as it always did).
    return [
        new_event(EventType.LLM_RESPONSE, {"i": i}, metadata=m.model_copy(deep=True))
        for i, m in enumerate(METAS)
    ]


def _same(got: Metadata, want: Metadata) -> None:
    assert got == want
    assert got.model_dump() == want.model_dump()
    assert got.to_dict() == want.to_dict()
    assert got.__pydantic_extra__ == want.__pydantic_extra__
    if want.to_dict():  # all-None metadata is stored as none (as on disk)
        assert got.model_fields_set == want.model_fields_set


async def _check(store: Store, sid: str) -> None:
    for got, want in zip(await store.replay(sid), METAS, strict=True):
        _same(got.metadata, want)


async def test_metadata_comes_back_as_appended_everywhere() -> None:
    async with agentstore.open("memory://") as store:
        sid = (await store.create_session()).id
        appended = await store.append_many(sid, _events())
        for got, want in zip(appended, METAS, strict=True):
            _same(got.metadata, want)
        await _check(store, sid)
        fork = await store.fork(sid, at_seq=len(METAS))
        await _check(store, fork.id)
        exported = [
            e.model_copy(update={"session_id": "imported"}) for e in await store.replay(sid)
        ]
        session = (await store.get_session(sid)).model_copy(update={"id": "imported"})
        await store.import_session(session, exported)
        await _check(store, "imported")
        state = await store.get_state(sid)
        assert state.tokens.cost_usd == 1 + 0.25 + 0.5


async def test_nothing_returned_is_shared_with_the_store() -> None:
    async with agentstore.open("memory://") as store:
        sid = (await store.create_session()).id
        appended = await store.append_many(sid, _events())
        first_read = await store.replay(sid)
        fork = await store.fork(sid, at_seq=len(METAS))
        for event in (*appended, *first_read):
            meta = event.metadata
            meta.model = "poked"
            if meta.extra is not None:
                meta.extra["k"] = "poked"
            unknown = meta.__pydantic_extra__
            if unknown and "custom" in unknown:
                unknown["custom"]["a"].append(2)
                unknown["new"] = 1
        await _check(store, sid)
        await _check(store, fork.id)
        # Two reads of the same event do not share either.
        one, two = (await store.replay(sid))[5], (await store.replay(sid))[5]
        assert one.metadata is not two.metadata
        assert one.metadata.__pydantic_extra__ is not two.metadata.__pydantic_extra__


async def test_sessions_without_events_stay_apart() -> None:
    async with agentstore.open("memory://") as store:
        a = (await store.create_session()).id
        b = (await store.create_session()).id
        forked = (await store.fork(a, at_seq=0)).id
        source = await store.get_session(b)
        imported = (await store.import_session(source.model_copy(update={"id": "imp"}), [])).id
        for sid in (a, b, forked, imported):
            assert await store.replay(sid) == []
            assert (await store.get_state(sid)).event_count == 0
        await store.append(a, new_event("custom", {"to": "a"}, metadata=Metadata(model="a")))
        for sid in (b, forked, imported):
            assert await store.replay(sid) == []
        for n, sid in enumerate((b, forked, imported), 1):
            await store.append_many(sid, [new_event("custom", {"to": sid}) for _ in range(n)])
        assert [e.payload for e in await store.replay(a)] == [{"to": "a"}]
        for n, sid in enumerate((b, forked, imported), 1):
            events = await store.replay(sid)
            assert [e.payload for e in events] == [{"to": sid}] * n
            assert [e.sequence_number for e in events] == list(range(1, n + 1))
            assert (await store.get_session(sid)).event_count == n
        again = (await store.fork(b, at_seq=0)).id
        await store.delete_session(again)
        empty = (await store.create_session()).id
        pruned = await store.prune(older_than=timedelta(0), now=None)
        assert empty in {p.session.id for p in pruned}
        assert await store.list_sessions() == []
        gone_too = (await store.create_session()).id
        await store.delete_session(gone_too)
        fresh = (await store.create_session()).id
        await store.append(fresh, new_event("custom", 1))
        assert [e.payload for e in await store.replay(fresh)] == [1]

"""Nothing a caller does to an object it passed in or got back changes what the store holds."""

from __future__ import annotations

from typing import Any

import pytest

from agentstore import Event, InvalidEventError, Metadata, Store, new_event


class IsolationContract:
    """The conformance tests of `isolation` (see `agentstore.testing.conformance`)."""

    async def test_mutating_inputs_and_outputs(self, store: Store) -> None:
        session = await store.create_session(labels={"env": "dev"})
        payload: dict[str, Any] = {"list": [1, 2], "inner": {"k": "v"}}
        meta = Metadata(tool_name="t", extra={"a": "b"})
        event = new_event("custom", payload, meta)
        stored = await store.append(session.id, event)
        state = await store.get_state(session.id)

        payload["list"].append(3)
        payload["inner"]["k"] = "changed"
        meta.tool_name = "changed"
        assert meta.extra is not None
        meta.extra["a"] = "changed"
        stored.payload["new"] = True
        state.data["custom"]["list"].clear()
        state.data["mine"] = 1
        state.tokens.input = 999
        session.labels["env"] = "prod"

        [again] = await store.get_events(session.id)
        assert again.payload == {"list": [1, 2], "inner": {"k": "v"}}
        assert again.metadata.tool_name == "t"
        assert again.metadata.extra == {"a": "b"}
        fresh = await store.get_state(session.id)
        assert fresh.data == {"custom": {"list": [1, 2], "inner": {"k": "v"}}}
        assert fresh.tokens.input == 0
        assert (await store.get_session(session.id)).labels == {"env": "dev"}

    async def test_mutating_returned_events_does_not_change_reads(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {"a": [1]}))
        [first] = await store.get_events(session.id)
        first.payload["a"].append(2)
        first.metadata.model = "x"
        [second] = await store.get_events(session.id)
        assert second.payload == {"a": [1]}
        assert second.metadata.model is None

    async def test_returned_events_are_read_only(self, store: Store) -> None:
        session = await store.create_session()
        appended = await store.append(session.id, new_event("custom", {"a": 1}))
        [batch] = await store.append_many(session.id, [new_event("custom", {"b": 2})])
        read = await store.get_events(session.id)
        replayed = await store.replay(session.id, types=["custom"])
        streamed = [e async for e in store.stream(session.id)]
        for event in (appended, batch, *read, *replayed, *streamed):
            with pytest.raises(InvalidEventError, match="read-only"):
                event.payload = {"changed": True}
            with pytest.raises(InvalidEventError, match="read-only"):
                event.with_metadata(model="x")
        changed = appended.model_copy(update={"payload": {"a": 2}})
        assert changed.payload == {"a": 2} and appended.payload == {"a": 1}
        writable = Event.model_validate(appended.model_dump())
        writable.payload = {"mine": True}
        assert writable.payload == {"mine": True}
        assert Event.model_validate(read[0].model_dump()) == read[0] == appended

"""Every stored event hands out a `model_fields_set` of its own: changing one changes
no other event."""

from __future__ import annotations

import agentstore
from agentstore import new_event


async def test_model_fields_set_is_each_events_own() -> None:
    async with agentstore.open("memory://") as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", i) for i in range(2)])
        first, second = await store.replay(sid)
        first.model_fields_set.discard("payload")  # a user's own bookkeeping, say
        assert second.model_dump(exclude_unset=True)["payload"] == 1
        again = (await store.replay(sid))[1]
        assert "payload" in again.model_fields_set

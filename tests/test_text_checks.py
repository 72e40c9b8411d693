"""Text that cannot be written as UTF-8 is refused before anything is written.

A Python string can hold a lone surrogate (`"\\ud800"`, from a bad decode or a JSON
`"\\ud800"` escape read by the standard library); no store can write it. A session name
or label holding one raised a bare `TypeError`, and on a data directory only after the
session file was written: `create_session` failed, and the session was there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import InvalidEventError, InvalidInputError, Session, Store, new_event

LONE = "\ud800"

CALLS: dict[str, Callable[[Store, str], Awaitable[Any]]] = {
    "create name": lambda store, sid: store.create_session(name=f"run {LONE}"),
    "create label key": lambda store, sid: store.create_session(labels={LONE: "v"}),
    "create label value": lambda store, sid: store.create_session(labels={"k": LONE}),
    "update name": lambda store, sid: store.update_session(sid, name=LONE),
    "update labels": lambda store, sid: store.update_session(sid, labels={"k": LONE}),
    "fork name": lambda store, sid: store.fork(sid, at_seq=0, name=LONE),
    "fork labels": lambda store, sid: store.fork(sid, at_seq=0, labels={"k": LONE}),
    "listing filter": lambda store, sid: store.list_sessions(labels={"k": LONE}),
    "import": lambda store, sid: store.import_session(
        Session.model_construct(
            id="imported", name=LONE, created_at=datetime.now(UTC), updated_at=datetime.now(UTC)
        ),
        [],
    ),
}


@pytest.mark.parametrize("where", ["file", "memory"])
@pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
async def test_a_lone_surrogate_is_refused_and_nothing_is_written(
    tmp_path: Path, where: str, call: str
) -> None:
    async with agentstore.open(tmp_path if where == "file" else "memory://") as store:
        session = await store.create_session(name="kept", labels={"k": "v"})
        with pytest.raises(InvalidInputError, match=r"not valid Unicode|not a valid session"):
            await CALLS[call](store, session.id)
        assert [s.id for s in await store.list_sessions()] == [session.id]
        again = await store.get_session(session.id)
        assert (again.name, again.labels) == ("kept", {"k": "v"})


def test_an_event_field_assigned_a_bad_value_raises_agentstores_error() -> None:
    event = new_event("custom", {})
    with pytest.raises(InvalidEventError):
        event.id = "x" + LONE
    with pytest.raises(InvalidEventError):
        event.id = ""

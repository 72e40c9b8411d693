"""Times without a UTC form (0001-01-01T00:00:00+01:00, 9999-12-31T23:59:59-14:00) are refused
by an import before anything is written: on a data directory the session file was written
first, and from then on every listing failed with an OverflowError (found by review 9b)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import agentstore
from agentstore import InvalidInputError, SessionNotFoundError, Store, new_event

EARLY = datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1)))
LATE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))


@pytest.fixture(params=["memory", "file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    target = {"in_memory": True} if request.param == "memory" else {"path": tmp_path / "data"}
    async with agentstore.open(**target) as opened:  # type: ignore[arg-type]
        yield opened


async def _exported(store: Store) -> tuple[agentstore.Session, list[agentstore.Event]]:
    session = await store.create_session(session_id="orig")
    await store.append(session.id, new_event("custom", {"n": 1}))
    return await store.get_session(session.id), await store.get_events(session.id)


async def test_an_import_created_outside_the_calendar_is_refused(store: Store) -> None:
    session, events = await _exported(store)
    bad = session.model_copy(update={"id": "early", "created_at": EARLY})
    with pytest.raises(InvalidInputError, match="leaves the years 1-9999"):
        await store.import_session(bad, events)
    with pytest.raises(SessionNotFoundError):
        await store.get_session("early")
    assert [s.id for s in await store.list_sessions()] == ["orig"]


async def test_an_imported_event_outside_the_calendar_is_refused(store: Store) -> None:
    session, events = await _exported(store)
    late = events[0].model_copy(update={"timestamp": LATE, "session_id": "late"})
    with pytest.raises(InvalidInputError, match="leaves the years 1-9999"):
        await store.import_session(session.model_copy(update={"id": "late"}), [late])
    with pytest.raises(SessionNotFoundError):
        await store.get_session("late")
    assert [s.id for s in await store.list_sessions()] == ["orig"]


async def test_a_session_file_already_holding_such_a_time_is_passed_over(tmp_path: Path) -> None:
    """A data directory an older agentstore let it into: its listing works again (the
    session is passed over with a warning, as any unreadable session file is)."""
    data = tmp_path / "data"
    async with agentstore.open(data) as store:
        await store.create_session(session_id="good")
        await store.create_session(session_id="poisoned")
    path = data / "sessions" / "poisoned.json"
    raw = json.loads(path.read_text())
    raw["created_at"] = EARLY.isoformat()
    path.write_text(json.dumps(raw))
    async with agentstore.open(data) as store:
        assert [s.id for s in await store.list_sessions()] == ["good"]

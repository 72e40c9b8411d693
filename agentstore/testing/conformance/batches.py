"""Batch marks: how `append_many` batched a session's events, kept by an import (a copy)."""

from __future__ import annotations

import pytest

from agentstore import InvalidInputError, SessionNotFoundError, Store, new_event
from agentstore.store.lifecycle_ops import import_session_of
from agentstore.store.validate import pending_from_stored
from agentstore.testing.conformance.builders import mixed_events


class BatchesContract:
    """The conformance tests of batch marks (see `Backend.batch_marks`).

    A backend that keeps no batch bounds returns None and passes by saying so; one that
    keeps them (file, PostgreSQL) must mark what `append_many` wrote and keep what an
    import brings, so that a copy between two such stores writes the same lines.
    """

    async def test_append_many_marks_its_batch(self, store: Store) -> None:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {"alone": 1}))
        await store.append_many(session.id, mixed_events(3))
        await store.append_many(session.id, mixed_events(1))  # a batch of one: no mark
        await store.append_many(session.id, mixed_events(2))
        marks = await store.backend.batch_marks(session.id)
        if marks is None:
            return  # this backend keeps no batch bounds
        assert marks == {2: 4, 3: 4, 6: 7}

    async def test_a_retried_batch_marks_only_what_it_writes(self, store: Store) -> None:
        session = await store.create_session()
        events = mixed_events(4)
        await store.append_many(session.id, events[:2])
        # A retry that brings two stored events and two new ones writes the new two.
        await store.append_many(session.id, events)
        marks = await store.backend.batch_marks(session.id)
        if marks is None:
            return
        assert marks == {1: 2, 3: 4}

    async def test_an_import_keeps_the_marks_it_is_given(self, store: Store) -> None:
        source = await store.create_session()
        await store.append_many(source.id, mixed_events(3))
        await store.append(source.id, new_event("custom", {}))
        await store.append_many(source.id, mixed_events(2))
        exported, events = await store.get_session(source.id), await store.get_events(source.id)
        given = {1: 3, 2: 3, 5: 6}
        await store.delete_session(source.id)
        await store.import_session(exported, events, batch_marks=given)
        assert await store.get_events(source.id) == events
        marks = await store.backend.batch_marks(source.id)
        assert marks is None or marks == given
        # Without marks an import marks nothing (its events appear at once, whole).
        await store.delete_session(source.id)
        await store.import_session(exported, events)
        assert (await store.backend.batch_marks(source.id)) in (None, {})

    @pytest.mark.parametrize(
        ("marks", "says"),
        [
            ({1: 1}, "not a later event"),
            ({1: 3, 2: 2}, "not a later event"),
            ({1: 3}, "its batch ends at 3"),
            ({1: 2, 2: 3}, "ends a batch"),
            ({4: 5}, "beyond the import"),
            ({7: 8}, "beyond the import"),
            ({1: "2"}, "not a later event"),
        ],
    )
    async def test_an_import_refuses_marks_that_tell_no_batches(
        self, store: Store, marks: dict[int, int], says: str
    ) -> None:
        source = await store.create_session()
        await store.append_many(source.id, mixed_events(4))
        exported, events = await store.get_session(source.id), await store.get_events(source.id)
        await store.delete_session(source.id)
        with pytest.raises(InvalidInputError, match=says):
            await store.import_session(exported, events, batch_marks=marks)
        with pytest.raises(SessionNotFoundError):  # nothing was created
            await store.get_session(source.id)

    async def test_the_backend_refuses_marks_that_leave_a_batch_open(self, store: Store) -> None:
        # A mark on the last event (a caller of the Backend API, or an import whose
        # duplicate id moves the marks onto other numbers) would mark a log's last line: a
        # data directory's recovery cuts such a batch as a torn tail when it next opens.
        source = await store.create_session()
        await store.append_many(source.id, mixed_events(3))
        if await store.backend.batch_marks(source.id) is None:
            return  # this backend keeps no batch bounds
        exported, events = await store.get_session(source.id), await store.get_events(source.id)
        await store.delete_session(source.id)
        fresh = import_session_of(exported)
        pending = [pending_from_stored(event) for event in events]
        pending[2].batch_end = 4
        with pytest.raises(InvalidInputError, match="beyond the log"):
            await store.backend.create_session(fresh, pending)
        with pytest.raises(SessionNotFoundError):
            await store.get_session(source.id)
        # An import that repeats an id (which would renumber what follows, and move the
        # marks onto other numbers) is refused before the backend sees it.
        twice = events[2].model_copy(update={"id": events[0].id})
        with pytest.raises(InvalidInputError, match="repeats the id of event 1"):
            await store.import_session(exported, [*events[:2], twice], batch_marks={1: 3, 2: 3})
        with pytest.raises(SessionNotFoundError):
            await store.get_session(source.id)

    async def test_marks_of_an_unknown_session(self, store: Store) -> None:
        with pytest.raises(SessionNotFoundError):
            await store.backend.batch_marks("no-such-session")

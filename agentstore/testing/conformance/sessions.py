"""Sessions: create, get, list (newest first, labels before paging), ids, prefixes."""

from __future__ import annotations

import pytest

from agentstore import (
    AmbiguousSessionError,
    InvalidInputError,
    InvalidSessionIdError,
    SessionExistsError,
    SessionNotFoundError,
    Store,
)


class SessionsContract:
    """The conformance tests of `sessions` (see `agentstore.testing.conformance`)."""

    async def test_create_and_get(self, store: Store) -> None:
        created = await store.create_session(name="my-agent", labels={"env": "dev"})
        got = await store.get_session(created.id)
        assert got.id == created.id
        assert got.name == "my-agent"
        assert got.labels == {"env": "dev"}
        assert got.event_count == 0
        assert got.created_at == created.created_at == got.updated_at
        assert got.created_at.tzinfo is not None

    async def test_explicit_id_and_exists(self, store: Store) -> None:
        await store.create_session(session_id="run-1")
        with pytest.raises(SessionExistsError):
            await store.create_session(session_id="run-1")

    async def test_unknown_session(self, store: Store) -> None:
        with pytest.raises(SessionNotFoundError):
            await store.get_session("nope")
        with pytest.raises(SessionNotFoundError):
            await store.get_state("nope")
        with pytest.raises(SessionNotFoundError):
            await store.get_events("nope")

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "a/b",
            "a\\b",
            "..",
            "a..b",
            "../etc",
            "/abs",
            "nul\x00byte",
            "x" * 129,
            "slash\u2215lookalike",
            "fullwidth\uff0fslash",
            ".hidden",
            "with space",
        ],
    )
    async def test_invalid_session_ids(self, store: Store, bad: str) -> None:
        with pytest.raises(InvalidSessionIdError):
            await store.create_session(session_id=bad)
        with pytest.raises(InvalidSessionIdError):
            await store.get_session(bad)
        assert await store.list_sessions() == []

    async def test_longest_valid_id(self, store: Store) -> None:
        session = await store.create_session(session_id="x" * 128)
        assert (await store.get_session(session.id)).id == "x" * 128

    async def test_list_newest_first(self, store: Store) -> None:
        ids = [(await store.create_session(name=f"s{i}")).id for i in range(5)]
        listed = await store.list_sessions()
        assert [s.id for s in listed] == ids[::-1]

    async def test_list_places_an_imported_session_by_its_creation_time(self, store: Store) -> None:
        first = await store.create_session(name="first")
        exported = await store.get_session(first.id)
        later = [(await store.create_session()).id for _ in range(3)]
        await store.delete_session(first.id)
        await store.import_session(exported.to_dict(), [])  # back, older than the others
        newest = (await store.create_session()).id
        expected = [newest, *reversed(later), first.id]
        assert [s.id for s in await store.list_sessions()] == expected
        seen: list[str] = []
        page = await store.list_sessions_page(limit=2)
        seen.extend(s.id for s in page.sessions)
        while page.next_cursor is not None:
            page = await store.list_sessions_page(limit=2, cursor=page.next_cursor)
            seen.extend(s.id for s in page.sessions)
        assert seen == expected

    async def test_label_filter_applies_before_paging(self, store: Store) -> None:
        wanted = []
        for i in range(10):
            labels = {"env": "prod" if i % 2 else "dev", "n": str(i)}
            session = await store.create_session(labels=labels)
            if i % 2:
                wanted.append(session.id)
        wanted.reverse()
        page1 = await store.list_sessions(limit=2, labels={"env": "prod"})
        page2 = await store.list_sessions(limit=2, offset=2, labels={"env": "prod"})
        page3 = await store.list_sessions(limit=2, offset=4, labels={"env": "prod"})
        assert [s.id for s in page1 + page2 + page3] == wanted
        assert await store.list_sessions(labels={"env": "prod", "n": "3"}) == [
            await store.get_session(wanted[3])
        ]

    async def test_list_arguments_checked(self, store: Store) -> None:
        with pytest.raises(InvalidInputError):
            await store.list_sessions(limit=-1)
        with pytest.raises(InvalidInputError):
            await store.create_session(labels={"k": 1})  # type: ignore[dict-item]

    async def test_list_reports_event_counts(self, store: Store) -> None:
        from agentstore import new_event

        session = await store.create_session()
        last = None
        for _ in range(3):
            last = await store.append(session.id, new_event("custom", {}))
        [listed] = await store.list_sessions()
        assert listed.event_count == 3
        assert last is not None
        assert listed.updated_at == last.timestamp

    async def test_resolve_prefix(self, store: Store) -> None:
        await store.create_session(session_id="abc123")
        await store.create_session(session_id="abd456")
        assert await store.resolve_session_id("abc") == "abc123"
        assert await store.resolve_session_id("abc123") == "abc123"
        with pytest.raises(AmbiguousSessionError) as info:
            await store.resolve_session_id("ab")
        assert info.value.candidates == ["abc123", "abd456"]
        with pytest.raises(SessionNotFoundError):
            await store.resolve_session_id("zzz")
        with pytest.raises(InvalidSessionIdError):
            await store.resolve_session_id("../")

    async def test_exact_id_wins_over_longer_ids(self, store: Store) -> None:
        await store.create_session(session_id="run")
        await store.create_session(session_id="run-2")
        assert await store.resolve_session_id("run") == "run"

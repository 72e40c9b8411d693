"""NUL (`\\u0000`) on PostgreSQL, which cannot hold it in text or jsonb: what would store it
is refused with an `InvalidInputError` and writes nothing, while the file and memory
backends keep it; a label filter holding it matches nothing (no label can hold it there)
instead of failing the listing with "cannot store this JSON value"."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import Store, new_event
from agentstore.errors import InvalidEventError, InvalidInputError


def _open(kind: str, tmp_path: Path, pg_url: str) -> Store:
    if kind == "memory":
        return agentstore.open(in_memory=True)
    return agentstore.open(tmp_path if kind == "file" else pg_url)


@pytest.mark.parametrize("kind", ["memory", "file", "postgres"])
async def test_a_label_filter_holding_nul_lists_what_matches(
    tmp_path: Path, pg_url: str, kind: str
) -> None:
    async with _open(kind, tmp_path, pg_url) as store:
        plain = await store.create_session(labels={"team": "a"})
        for nul in ({"team": "a\x00"}, {"te\x00am": "a"}):
            assert await store.list_sessions(labels=nul) == []
            page = await store.list_sessions_page(labels=nul)
            assert page.sessions == [] and page.next_cursor is None
        assert [s.id for s in await store.list_sessions(labels={"team": "a"})] == [plain.id]


@pytest.mark.parametrize("kind", ["memory", "file", "postgres"])
async def test_nul_in_a_session_or_an_event_is_kept_or_refused_whole(
    tmp_path: Path, pg_url: str, kind: str
) -> None:
    async with _open(kind, tmp_path, pg_url) as store:
        attempts = [
            lambda: store.create_session(name="a\x00b"),
            lambda: store.create_session(labels={"k": "a\x00b"}),
            lambda: store.create_session(labels={"k\x00": "v"}),
        ]
        kept = 0
        for attempt in attempts:
            if kind == "postgres":
                with pytest.raises(InvalidInputError, match=r"NUL|\\u0000"):
                    await attempt()
            else:
                await attempt()
                kept += 1
        session = await store.create_session()
        kept += 1
        batch = [new_event("custom", {"n": 1}), new_event("custom", {"k\x00": "v"})]
        if kind == "postgres":
            with pytest.raises(InvalidInputError, match="NUL"):
                await store.append_many(session.id, batch)
            assert await store.replay(session.id) == []  # the batch is refused whole
        else:
            await store.append_many(session.id, batch)
            assert [e.payload for e in await store.replay(session.id)] == [
                {"n": 1},
                {"k\x00": "v"},
            ]
        assert len(await store.list_sessions()) == kept


async def test_nul_in_labels_is_refused_naming_them(pg_url: str) -> None:
    # Not "PostgreSQL cannot store this JSON value: unsupported Unicode escape sequence"
    # as an InvalidEventError (no event is involved).
    async with agentstore.open(pg_url) as store:
        for labels in ({"k": "a\x00b"}, {"k\x00": "v"}):
            with pytest.raises(InvalidInputError, match=r"NUL .*in its labels") as caught:
                await store.create_session(labels=labels)
            assert not isinstance(caught.value, InvalidEventError)
            session = await store.create_session()
            with pytest.raises(InvalidInputError, match=r"NUL .*in its labels"):
                await store.update_session(session.id, labels=labels)
            with pytest.raises(InvalidInputError, match=r"NUL .*in its labels"):
                await store.fork(session.id, at_seq=0, labels=labels)
        assert all(s.labels == {} for s in await store.list_sessions())

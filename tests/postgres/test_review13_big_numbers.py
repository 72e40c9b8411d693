"""Sequence numbers and limits past PostgreSQL's bigint (2**63 and up) answer as they do on
memory and files: a read from past the end gives nothing, an `expected_seq` no session can
be at gives `ConcurrencyError`; not a `StorageError` ("DataError: invalid input for query
argument ... value out of int64 range"), which says the storage failed."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import Store, new_event
from agentstore.errors import ConcurrencyError

_BIG = 2**63


def _open(kind: str, tmp_path: Path, pg_url: str) -> Store:
    if kind == "memory":
        return agentstore.open(in_memory=True)
    return agentstore.open(tmp_path if kind == "file" else pg_url)


@pytest.mark.parametrize("kind", ["memory", "file", "postgres"])
async def test_numbers_past_bigint_answer_as_on_every_backend(
    tmp_path: Path, pg_url: str, kind: str
) -> None:
    async with _open(kind, tmp_path, pg_url) as store:
        sid = (await store.create_session()).id
        await store.append_many(sid, [new_event("custom", {"n": n}) for n in (1, 2)])
        assert await store.get_events(sid, from_seq=_BIG) == []
        assert await store.replay(sid, from_seq=_BIG) == []
        assert len(await store.replay(sid, to_seq=_BIG)) == 2
        assert len(await store.replay(sid, limit=_BIG)) == 2
        for batch in (
            [new_event("custom", {"n": 3})],
            [new_event("custom", {"n": n}) for n in (3, 4)],
        ):
            with pytest.raises(ConcurrencyError):
                await store.append_many(sid, batch, expected_seq=_BIG)
        assert len(await store.replay(sid)) == 2

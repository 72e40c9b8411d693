"""`agentstore copy` keeps how `append_many` batched a session (its lines' `batch_end`
marks), so copies between data directories and PostgreSQL give the same lines back, byte
for byte: a whole copy, and a resumed one that extends a session grown in SRC since."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import agentstore
from agentstore import new_event
from tests.batches_helpers import append_mixed as _append_mixed
from tests.batches_helpers import log_bytes as _log
from tests.cli_process import agentstore_cli


def _copy(src: str | Path, dst: str | Path) -> str:
    out = agentstore_cli("copy", src, dst)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(params=["file", "postgres"])
def middle(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the copy goes before it comes back: another data directory, or PostgreSQL."""
    if request.param == "file":
        return str(tmp_path / "middle")
    url: str = request.getfixturevalue("pg_url")
    return url


async def test_a_copy_there_and_back_gives_the_same_lines(middle: str, tmp_path: Path) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    async with agentstore.open(src) as store:
        sid = (await store.create_session(name="batched")).id
        await _append_mixed(store, sid, 0)
    assert b'"batch_end":3' in _log(src, sid)  # the source has marks to keep
    _copy(src, middle)
    _copy(middle, back)
    assert _log(back, sid) == _log(src, sid)
    async with agentstore.open(back) as copied:
        assert (await copied.verify(sid)).ok


async def test_a_resumed_copy_extends_with_the_same_batches(middle: str, tmp_path: Path) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    async with agentstore.open(src) as store:
        sid = (await store.create_session()).id
        await _append_mixed(store, sid, 0)
    _copy(src, middle)
    _copy(middle, back)
    async with agentstore.open(src) as store:  # SRC grows after the first copy
        await _append_mixed(store, sid, 100)
    assert "extended 1" in _copy(src, middle)
    assert "extended 1" in _copy(middle, back)
    assert _log(back, sid) == _log(src, sid)


async def test_appends_that_share_a_statement_mark_each_batch(pg_url: str) -> None:
    """Concurrent appends to several sessions go out as one statement (a shared flight):
    each batch in it is marked as a lone append marks it."""
    from agentstore.backends.postgres import PostgresBackend

    async with agentstore.open(f"{pg_url}&pool_max_size=2", snapshot_interval=0) as store:
        backend = store.backend
        assert isinstance(backend, PostgresBackend)
        sessions = [(await store.create_session()).id for _ in range(8)]

        async def writer(sid: str) -> None:
            for i in range(12):
                size = i % 3 + 1
                await store.append_many(sid, [new_event("custom", {"i": i}) for _ in range(size)])

        await asyncio.gather(*(writer(sid) for sid in sessions))
        assert backend.shared_flights > 0
        for sid in sessions:
            events = await store.get_events(sid)
            expected: dict[int, int] = {}
            for i in range(12):
                seqs = [e.sequence_number for e in events if e.payload["i"] == i]
                expected.update({seq: seqs[-1] for seq in seqs[:-1]})
            assert await backend.batch_marks(sid) == expected

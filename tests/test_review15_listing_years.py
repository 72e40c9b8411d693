"""Review 15: the file backend lists sessions of the years 1-999 out of order.

Its session index sorts on `sessions.sort_key`, a `strftime("%Y-...")` string, and glibc's
`%Y` does not pad the year to four digits: year 500 is "500-06-01T...", which sorts
after "2026-..." as a string. A session imported with such a creation time (in the
calendar the store accepts: years 1 to 9999 in UTC) is listed as the newest, and a
cursor of such a time (3e61162 made cursors with no UTC form sort before or after every
session, as memory and PostgreSQL do) lands on the wrong side of every session: year 5
lists them all where memory lists none.

The memory backend is the reference; `sessions.sort_key` now writes the year with four
digits (index lines written before keep their old keys until the index is rebuilt).
"""

from __future__ import annotations

from pathlib import Path

import agentstore
from agentstore.backends.base import SessionQuery

_OLD = {
    "id": "s-old",
    "created_at": "0500-06-01T00:00:00+00:00",
    "updated_at": "0500-06-01T00:00:00+00:00",
    "name": "",
    "labels": {},
    "event_count": 0,
}


async def _listings(store: agentstore.Store) -> tuple[list[str], list[str], list[str]]:
    await store.create_session(session_id="s-new")
    await store.import_session(_OLD, [])
    everything = [s.id for s in await store.list_sessions()]
    before_year_5 = await store.backend.list_sessions(
        SessionQuery(limit=10, cursor="0005-01-01T00:00:00+00:00|z")
    )
    before_1500 = await store.backend.list_sessions(
        SessionQuery(limit=10, cursor="1500-01-01T00:00:00+00:00|z")
    )
    return (
        everything,
        [s.id for s in before_year_5.sessions],
        [s.id for s in before_1500.sessions],
    )


async def test_memory_lists_an_early_session_last() -> None:
    async with agentstore.open(in_memory=True) as store:
        assert await _listings(store) == (["s-new", "s-old"], [], ["s-old"])


async def test_the_file_backend_lists_an_early_session_last(tmp_path: Path) -> None:
    async with agentstore.open(tmp_path) as store:
        assert await _listings(store) == (["s-new", "s-old"], [], ["s-old"])

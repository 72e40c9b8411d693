"""Review of `append._lines` (a batch's types, payloads and metadata as one text each, a
line per event, split on the server): texts a backend's caller of its own may hand over
that sit next to the separator. Each event must be stored exactly as given, in order:
empty types, an id or a type holding a line break (or a carriage return, or Unicode line and
paragraph separators, which `string_to_array` must not split on), a JSON string ending
in a backslash (no escape processing of the split), a batch of two where only one text
holds a break, and a batch where every text is the shortest JSON there is.
"""

from __future__ import annotations

import asyncpg
import pytest

import agentstore
from agentstore.backends.postgres import PostgresBackend
from agentstore.backends.types import PendingEvent


def _pending(
    i: int, type_: str, payload_json: bytes, metadata_json: bytes = b"{}", id_: str = ""
) -> PendingEvent:
    return PendingEvent(
        id=id_ or f"e{i}",
        type=type_,
        payload=None,
        payload_json=payload_json,
        metadata={},
        metadata_json=metadata_json,
    )


_BATCHES = {
    "separators": [
        ("custom", '"a\u2028b"'.encode()),
        ("", b'"\\\\"'),  # an empty type; the JSON string of one backslash
        ("t\r", '"\u2029\u0085\\u000b"'.encode()),
        ("", b"1"),
    ],
    "a type holding a line break": [("custom", b"1"), ("two\nlines", b"2"), ("x", b"3")],
    "metadata holding a line break": [("a", b"1", b'{\n"k":1}'), ("b", b"2")],
    "two, one break": [("a", b"[1,\n2]"), ("b", b"{}")],
    "an id holding a line break": [("a", b"1", b"{}", "x\ny"), ("b", b"2", b"{}", "y")],
    "ids beside separators": [("a", b"1", b"{}", "x\u2028"), ("b", b"2", b"{}", "\r")],
    "shortest texts": [("", b"0"), ("", b"0")],
}


@pytest.mark.parametrize("name", list(_BATCHES))
async def test_each_event_of_a_batch_is_stored_exactly(
    pg_url: str, pg_schema: str, admin: asyncpg.Connection, name: str
) -> None:
    batch = [_pending(i, *row) for i, row in enumerate(_BATCHES[name])]
    backend = PostgresBackend(pg_url, notify=False)
    async with agentstore.open(backend) as store:
        session = await store.create_session()
        result = await backend.append(session.id, batch, None)
        assert [e.sequence_number for e in result.events] == list(range(1, len(batch) + 1))
        # And again: an idempotent retry finds each event by its id.
        again = await backend.append(session.id, batch, None)
        assert again.written == 0
        assert [e.sequence_number for e in again.events] == list(range(1, len(batch) + 1))
    rows = await admin.fetch(
        f'SELECT id, type, payload_json, metadata_json FROM "{pg_schema}".events ORDER BY seq'
    )
    assert [tuple(r) for r in rows] == [
        (p.id, p.type, p.payload_json.decode(), p.metadata_json.decode()) for p in batch
    ]

"""A batch's types, payloads and metadata go to the server as one text each, a line per
event (`append._lines`): every event's JSON text is stored exactly as given, in order,
also when the text itself holds line breaks (then the batch goes as text arrays)."""

from __future__ import annotations

import dataclasses

import asyncpg
import orjson

import agentstore
from agentstore import new_event
from agentstore.backends.postgres import PostgresBackend
from agentstore.store.validate import prepare

_PAYLOADS = [
    {"text": "two\nlines", "sep": "\u2028\u2029", "bs": "\\n", "e": "é"},
    {"empty": "", "list": [], "n": None},
    "a string",
    {"crlf": "\r\n", "tab": "\t"},
]


async def _stored(pg_url: str, schema: str) -> list[tuple[int, str, str, str, int | None]]:
    conn = await asyncpg.connect(pg_url.split("?")[0])
    try:
        rows = await conn.fetch(
            f'SELECT seq, type, payload_json, metadata_json, batch_end FROM "{schema}".events '
            "ORDER BY seq"
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def test_append_many_stores_each_json_text_exactly(pg_url: str, pg_schema: str) -> None:
    events = [
        new_event("custom" if i % 2 else "tool_result", payload).with_metadata(
            model=f"m{i}\n", tool_name="x"
        )
        for i, payload in enumerate(_PAYLOADS)
    ]
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        stored = await store.append_many(session.id, events)
        assert [e.sequence_number for e in stored] == [1, 2, 3, 4]
        assert [e.payload for e in await store.replay(session.id)] == _PAYLOADS
    rows = await _stored(pg_url, pg_schema)
    expected = [prepare(e) for e in events]
    assert rows == [
        (k, p.type, p.payload_json.decode(), p.metadata_json.decode(), 4 if k < 4 else None)
        for k, p in enumerate(expected, start=1)
    ]


async def test_json_text_holding_line_breaks_is_stored_exactly(pg_url: str, pg_schema: str) -> None:
    # A backend's caller of its own may hand over any JSON text: here pretty-printed, with
    # line breaks between its tokens (agentstore's own, orjson's compact text, has none).
    backend = PostgresBackend(pg_url, notify=False)
    async with agentstore.open(backend) as store:
        session = await store.create_session()
        batch = [
            dataclasses.replace(
                prepare(new_event("custom", payload)),
                payload_json=orjson.dumps(payload, option=orjson.OPT_INDENT_2),
            )
            for payload in ({"a": 1, "b": [1, 2]}, {"c": "d"}, 3)
        ]
        result = await backend.append(session.id, batch, None)
        assert [e.sequence_number for e in result.events] == [1, 2, 3]
        # And a batch of compact text after it, on the same connection.
        await store.append_many(session.id, [new_event("custom", {"n": i}) for i in range(2)])
    rows = await _stored(pg_url, pg_schema)
    assert [r[2] for r in rows] == [p.payload_json.decode() for p in batch] + [
        '{"n":0}',
        '{"n":1}',
    ]
    assert "\n" in rows[0][2]

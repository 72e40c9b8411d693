"""The append statements of the PostgreSQL backend, as text: `{s}` is the quoted schema,
`{expected}` the `expected_seq` condition, `{snap}` a carried snapshot (`CARRY`), `{n}`
and `{columns}` a batch's size and columns (`ARRAYS`, `LINES`). `append.Appender` formats
and runs them.
"""

from __future__ import annotations

__all__ = [
    "ARRAYS",
    "ARRAYS_N",
    "CARRY",
    "CREATE",
    "FAST",
    "FAST_NOW",
    "LINES",
    "ONE_NOW",
]

# `followed`: a follower's lease on the session is live (see notifications.py), read from
# the row the statement locks anyway; NULL (never followed) counts as no. `created_at`:
# which session of that id was appended to (`AppendResult.session_created_at`). The
# timestamp rule: each event gets max(its own or now, every earlier one, the log's). The
# batch mark of an event (`batch_end`, see `Backend.batch_marks`): on every event but the
# last, the batch's last sequence number (none on an event appended alone).
FAST = """
WITH s AS (
    UPDATE {s}.sessions
    SET last_seq = last_seq + cardinality($2::text[]),
        prev_ts = last_ts,
        last_ts = greatest(
            last_ts, (SELECT max(coalesce(t, now())) FROM unnest($3::timestamptz[]) AS t))
    WHERE id = $1 {expected}
    RETURNING last_seq - cardinality($2::text[]) AS base, prev_ts,
        followed_until > now() AS followed, created_at
), i AS (
    INSERT INTO {s}.events
        (session_id, seq, id, type, ts, payload_json, metadata_json, batch_end)
    SELECT $1, s.base + u.ord, u.id, u.type,
           greatest(s.prev_ts, max(coalesce(u.ts, now())) OVER (ORDER BY u.ord)), u.p, u.m,
           CASE WHEN u.ord < cardinality($2::text[]) THEN s.base + cardinality($2::text[]) END
    FROM s, unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
        WITH ORDINALITY AS u(id, ts, type, p, m, ord)
    RETURNING seq, ts
)
SELECT i.seq, i.ts, s.followed, s.created_at FROM i, s
"""

# The common case, no event bringing its own timestamp: all get max(now, the log's last),
# so the events are `base + 1 .. base + n` at one time and one row tells them all (a row
# per event cost about 7% of a batch of 100 here, in output and decoding). The INSERT runs
# to completion although nothing reads it (PostgreSQL runs every data-modifying WITH).
# `{n}`: the batch's size; `{columns}`: its ids, types, payloads and metadata.
FAST_NOW = """
WITH s AS (
    UPDATE {s}.sessions
    SET last_seq = last_seq + {n}, last_ts = greatest(last_ts, now())
    WHERE id = $1 {expected}
    RETURNING last_seq - {n} AS base, last_ts,
        followed_until > now() AS followed, created_at
), i AS (
    INSERT INTO {s}.events
        (session_id, seq, id, type, ts, payload_json, metadata_json, batch_end)
    SELECT $1, s.base + u.ord, u.id, u.type, s.last_ts, u.p, u.m,
        CASE WHEN u.ord < {n} THEN s.base + {n} END
    FROM s, unnest({columns}) WITH ORDINALITY AS u(id, type, p, m, ord)
){snap}
SELECT base, last_ts, followed, created_at FROM s
"""

# The ids, types, payloads and metadata of `FAST_NOW`'s events: text arrays (ARRAYS), or
# one text each with a line per event and the batch's size as the last parameter (LINES,
# see `append._lines`).
ARRAYS = "$2::text[], $3::text[], $4::text[], $5::text[]"
ARRAYS_N = "cardinality($2::text[])"
LINES = (
    "string_to_array($2::text, E'\\n'), string_to_array($3::text, E'\\n'), "
    "string_to_array($4::text, E'\\n'), string_to_array($5::text, E'\\n')"
)

# `FAST_NOW` for one event: scalar parameters instead of one-element arrays (no array to
# build, send and unnest).
ONE_NOW = """
WITH s AS (
    UPDATE {s}.sessions
    SET last_seq = last_seq + 1, last_ts = greatest(last_ts, now())
    WHERE id = $1 {expected}
    RETURNING last_seq - 1 AS base, last_ts, followed_until > now() AS followed, created_at
), i AS (
    INSERT INTO {s}.events (session_id, seq, id, type, ts, payload_json, metadata_json)
    SELECT $1, s.base + 1, $2, $3, s.last_ts, $4, $5 FROM s
){snap}
SELECT base, last_ts, followed, created_at FROM s
"""

# A snapshot of the session carried by `FAST_NOW` or `ONE_NOW` (see snapshots.py):
# written only if the statement updated the session row (`FROM s`) and that session was
# made before the snapshot was taken (another process may have deleted the session it was
# taken of and made a new one with its id while it waited), never over a newer one
# (another process's), and committed with the append.
CARRY = """, n AS (
    INSERT INTO {s}.snapshots (session_id, reducer, version, state, created_at)
    SELECT $1, $6, $7, $8::json, $9 FROM s, {s}.sessions x
    WHERE x.id = $1 AND x.created_at <= $9
    ON CONFLICT (session_id, reducer) DO UPDATE SET version = excluded.version,
        state = excluded.state, created_at = excluded.created_at
        WHERE {s}.snapshots.version <= excluded.version
)"""

CREATE = """
WITH s AS (
    INSERT INTO {s}.sessions
        (id, name, created_at, labels, parent_id, forked_at, budget, extra, last_seq, last_ts)
    VALUES ($1, $7, $8, $9::jsonb, $10, $11, $12::jsonb, $13::jsonb, $14, $15)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
), e AS (
    INSERT INTO {s}.events
        (session_id, seq, id, type, ts, payload_json, metadata_json, batch_end)
    SELECT s.id, u.ord, u.id, u.type, u.ts, u.p, u.m, u.b
    FROM s, unnest($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
        $16::bigint[]) WITH ORDINALITY AS u(id, ts, type, p, m, b, ord)
)
SELECT count(*) FROM s
"""

# A later page of a new session's events (`imports.py`), in the transaction that created
# it with the first page: sequence numbers and batch marks as planned, one row per event.
IMPORT_PAGE = """
INSERT INTO {s}.events (session_id, seq, id, type, ts, payload_json, metadata_json, batch_end)
SELECT $1, u.seq, u.id, u.type, u.ts, u.p, u.m, u.b
FROM unnest($2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
    $8::bigint[]) AS u(seq, id, ts, type, p, m, b)
"""

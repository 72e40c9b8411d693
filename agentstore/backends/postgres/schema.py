"""The tables, as ordered, named migration steps recorded in `<schema>.schema_migrations`.

Every `Store` query is one indexed statement on these tables:

- `sessions`: one row per session; `last_seq` and `last_ts` are the tail of its log, kept
  up to date by the append statement (the row is the session's append lock, too);
  `(created_at DESC, id DESC)` serves the newest-first listing by cursor, a GIN index on
  `labels` the label filter, and the primary key (ids in "C" order) the prefix search.
- `events`: primary key `(session_id, seq)` (reads are range scans of it), unique
  `(session_id, id)` (idempotent appends). The exact JSON text of payload and metadata is
  kept (`payload_json`, `metadata_json`) so a replay returns byte for byte what was
  appended. Until step 5 `payload` and `metadata` were jsonb columns generated from it;
  what they cost, measured (2026-11-30, 2 cores, the server's time for a batch of 100
  events of about 560 bytes into a table of 20,000): 1.51 ms with them, 0.89 without; the
  JSON parse (`jsonb_in`) is most of it, so jsonb sent from the client costs the same
  (1.50 ms: the server parses the text it is sent). The unique index on random event ids
  is another 0.31 ms (1.20 without it): each id lands on its own leaf page.
- `events_jsonb` (step 5): a view of `events` with `payload` and `metadata` as jsonb,
  parsed from the kept text as a query reads them, for queries of your own (an
  expression index on `(payload_json::jsonb)` serves them where they must be fast).
  Dropping the stored columns made an `append_many` of 100 1.30-1.39x faster here.
- `snapshots`: one per (session, reducer).
- `sessions.followed_until` (step 2): the follower lease; appends notify only while it is
  live (see `agentstore.backends.postgres.notifications`).
- `sessions` pages half full (step 3): the update of every append stays on its page.
- `events.batch_end` (step 4): the batch an event was appended in (see `Backend.batch_marks`).

Steps are only ever added at the end, never edited: a database records which ran.
"""

from __future__ import annotations

from typing import Final

from agentstore.backends.postgres._driver import asyncpg, pgexc, translated
from agentstore.errors import StorageError

__all__ = ["MIGRATIONS", "check_not_newer", "current_version", "migrate", "schema_version"]


MIGRATIONS: Final[tuple[tuple[str, str], ...]] = (
    (
        "create sessions, events and snapshots",
        """
        CREATE TABLE {s}.sessions (
            id text COLLATE "C" PRIMARY KEY,
            name text,
            created_at timestamptz NOT NULL,
            labels jsonb NOT NULL DEFAULT '{{}}',
            parent_id text,
            forked_at bigint,
            budget jsonb,
            extra jsonb,
            last_seq bigint NOT NULL DEFAULT 0,
            last_ts timestamptz,
            prev_ts timestamptz
        );
        CREATE INDEX sessions_newest ON {s}.sessions (created_at DESC, id DESC);
        CREATE INDEX sessions_labels ON {s}.sessions USING gin (labels jsonb_path_ops);
        CREATE TABLE {s}.events (
            session_id text COLLATE "C" NOT NULL,
            seq bigint NOT NULL,
            id text NOT NULL,
            type text NOT NULL,
            ts timestamptz NOT NULL,
            payload_json text NOT NULL,
            metadata_json text NOT NULL,
            payload jsonb GENERATED ALWAYS AS (payload_json::jsonb) STORED,
            metadata jsonb GENERATED ALWAYS AS (metadata_json::jsonb) STORED,
            PRIMARY KEY (session_id, seq),
            UNIQUE (session_id, id)
        );
        CREATE TABLE {s}.snapshots (
            session_id text COLLATE "C" NOT NULL
                REFERENCES {s}.sessions (id) ON DELETE CASCADE,
            reducer text NOT NULL,
            version bigint NOT NULL,
            state json NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (session_id, reducer)
        );
        """,
    ),
    (
        "follower leases on sessions",
        # Set by a follower (`wait_for_append`) once it listens, renewed while it follows;
        # an append sends a NOTIFY only while it is in the future. NULL: never followed.
        # Adding a nullable column without a default rewrites nothing.
        "ALTER TABLE {s}.sessions ADD COLUMN followed_until timestamptz;",
    ),
    (
        "room on session pages for in-place updates",
        # Every append updates its session row (last_seq, last_ts). On full pages the new
        # version lands on another page, and then every index of sessions (the GIN on
        # labels too) gets an entry: measured, 27% of the updates of 6,000 appends to 200
        # sessions. Half-full pages keep them on the page (HOT: no index entries). Pages
        # written from now on; existing ones as they are rewritten (VACUUM FULL, pg_repack).
        "ALTER TABLE {s}.sessions SET (fillfactor = 50);",
    ),
    (
        "batch marks of events",
        # `batch_end`: on every event of an `append_many` batch but its last, the batch's
        # last sequence number, as a data directory marks its lines; a copy between stores
        # keeps it (`Backend.batch_marks`). A nullable column without a default: no rewrite.
        "ALTER TABLE {s}.events ADD COLUMN batch_end bigint;",
    ),
    (
        "payload and metadata as jsonb in the view events_jsonb, not stored twice",
        # The stored jsonb copies cost an append_many of 100 1.30-1.39x its time (parse
        # and a second copy of every event's JSON in the row and the WAL); the view parses
        # the kept text when a query reads it. Dropping a column rewrites nothing (the
        # space is reused as rows are). An object of one's own on the two columns (an
        # index, a view) would be dropped with them or block the step: refused, named.
        # So is a trigger on events whose function reads NEW.payload or NEW.metadata:
        # PostgreSQL records no dependency on a function's body, and the step would
        # leave it failing every append ("record "new" has no field "payload""). And a
        # relation of one's own already named events_jsonb: PostgreSQL's "relation
        # already exists" would say neither which step nor what to do.
        """
        DO $$
        DECLARE found text;
        BEGIN
            IF to_regclass('{s}.events_jsonb') IS NOT NULL THEN
                RAISE EXCEPTION 'step 5 creates the view %.events_jsonb, and a relation of '
                    'that name exists already: rename or drop it and run agentstore migrate '
                    'again', '{s}';
            END IF;
            SELECT string_agg(format('trigger %I on events (function %s)', t.tgname,
                t.tgfoid::regprocedure), ', ' ORDER BY t.tgname)
            INTO found
            FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
            WHERE t.tgrelid = '{s}.events'::regclass AND NOT t.tgisinternal
                AND p.prosrc ~* '\\m(new|old)\\s*\\.\\s*"?(payload|metadata)\\M';
            IF found IS NOT NULL THEN
                RAISE EXCEPTION 'step 5 replaces the stored columns events.payload and '
                    'events.metadata with the view events_jsonb, and % reads them: make it '
                    'read (NEW.payload_json::jsonb) and (NEW.metadata_json::jsonb) instead, '
                    'and run agentstore migrate again', found;
            END IF;
            SELECT string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), ', ')
            INTO found
            FROM pg_depend d
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.refobjid = '{s}.events'::regclass
                AND a.attname IN ('payload', 'metadata')
                AND d.classid <> 'pg_attrdef'::regclass;
            IF found IS NOT NULL THEN
                RAISE EXCEPTION 'step 5 replaces the stored columns events.payload and '
                    'events.metadata with the view events_jsonb, and % uses them: drop it '
                    '(an index on (payload_json::jsonb) serves the same queries) and run '
                    'agentstore migrate again', found;
            END IF;
        END $$;
        ALTER TABLE {s}.events DROP COLUMN IF EXISTS payload, DROP COLUMN IF EXISTS metadata;
        CREATE VIEW {s}.events_jsonb AS
            SELECT session_id, seq, id, type, ts, payload_json::jsonb AS payload,
                metadata_json::jsonb AS metadata, payload_json, metadata_json, batch_end
            FROM {s}.events;
        -- Who may read events may read the view: a role given SELECT on the tables at
        -- set-up (docs/postgres.md) read events.payload until now. The view reads events
        -- as its reader (PostgreSQL 15+), so row-level security on events holds through
        -- it; before 15 a view reads as its owner, past those policies: no grants then.
        DO $$
        DECLARE r record;
        BEGIN
            IF current_setting('server_version_num')::int >= 150000 THEN
                EXECUTE 'ALTER VIEW {s}.events_jsonb SET (security_invoker = true)';
            ELSIF (SELECT relrowsecurity FROM pg_class WHERE oid = '{s}.events'::regclass) THEN
                RETURN;
            END IF;
            FOR r IN
                SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                WHERE c.oid = '{s}.events'::regclass AND a.privilege_type = 'SELECT'
                    AND a.grantee <> c.relowner
            LOOP
                EXECUTE format('GRANT SELECT ON {s}.events_jsonb TO %s', CASE
                    WHEN r.grantee = 0 THEN 'PUBLIC' ELSE r.grantee::regrole::text END);
            END LOOP;
        END $$;
        """,
    ),
)
"""(name, SQL) per step, in order; `{s}` is the quoted schema name."""


def current_version() -> int:
    """The schema version this code writes: the number of migration steps."""
    return len(MIGRATIONS)


async def schema_version(conn: asyncpg.Connection, schema: str) -> int:
    """Return the highest step recorded in `schema` (0: no agentstore tables there)."""
    try:
        value = await conn.fetchval(f'SELECT max(version) FROM "{schema}".schema_migrations')
    except (pgexc.UndefinedTableError, pgexc.InvalidSchemaNameError):
        return 0
    return int(value or 0)


def check_not_newer(found: int, schema: str, where: str) -> None:
    """Raise `StorageError` when the database is ahead of this code."""
    if found > current_version():
        raise StorageError(
            f"{where}: schema {schema!r} is at version {found}, newer than this agentstore "
            f"knows ({current_version()}); upgrade agentstore (pip install -U "
            "'agentstore[postgres]') before opening it"
        )


async def migrate(conn: asyncpg.Connection, schema: str, where: str) -> list[str]:
    """Run the steps `schema` has not had yet; return their names.

    Safe with several migrators at once: a transaction-scoped advisory lock keyed on the
    schema serialises them, and each re-reads the recorded version under the lock. Every
    step runs in that one transaction (PostgreSQL's DDL is transactional), so a failure
    leaves the schema as it was.
    """
    quoted = f'"{schema}"'
    async with translated(f"migrating {where}"):
        found = await schema_version(conn, schema)
        check_not_newer(found, schema, where)
        if found == current_version():
            return []
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"agentstore:{schema}"
            )
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations ("
                "version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            found = await schema_version(conn, schema)
            check_not_newer(found, schema, where)
            applied: list[str] = []
            for version, (name, sql) in enumerate(MIGRATIONS, start=1):
                if version <= found:
                    continue
                await conn.execute(sql.format(s=quoted))
                await conn.execute(
                    f"INSERT INTO {quoted}.schema_migrations (version, name) VALUES ($1, $2)",
                    version,
                    name,
                )
                applied.append(name)
            return applied

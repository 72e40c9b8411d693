"""The PostgreSQL backend's own promises: URL options, schema migrations, exact JSON text,
server-side statement timeouts, a clear error without the extra."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

import agentstore
from agentstore import EventType, new_event
from agentstore.backends.postgres import PostgresBackend, parse_url
from agentstore.backends.postgres.schema import current_version
from agentstore.errors import (
    BackendUnavailableError,
    InvalidEventError,
    InvalidInputError,
    StorageError,
    StorageUnavailableError,
)


async def test_open_by_url_appends_and_replays(pg_url: str) -> None:
    postgres_url = pg_url.replace("postgresql://", "postgres://", 1)
    async with agentstore.open(postgres_url) as store:
        session = await store.create_session(name="run", labels={"env": "prod"})
        stored = await store.append(session.id, new_event(EventType.USER_MESSAGE, {"q": "hi"}))
        assert stored.sequence_number == 1
    async with agentstore.open(pg_url) as again:  # another store on the same schema
        events = await again.replay(session.id)
        assert [e.payload for e in events] == [{"q": "hi"}]
        listed = await again.list_sessions(labels={"env": "prod"})
        assert [s.id for s in listed] == [session.id]


async def test_payload_text_is_kept_exactly_and_jsonb_is_queryable(
    pg_url: str, pg_schema: str
) -> None:
    payload = {"z": 1.0, "a": [1e-7, "é\n"], "nested": {"b": None, "a": True}}
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", payload).with_metadata(model="m"))
        [event] = await store.get_events(session.id)
    assert event.payload == payload
    conn = await asyncpg.connect(pg_url.split("?")[0])
    try:
        row = await conn.fetchrow(
            f"SELECT payload_json, payload->>'z' AS z, metadata->>'model' AS model "
            f'FROM "{pg_schema}".events_jsonb'
        )
    finally:
        await conn.close()
    assert row["payload_json"] == '{"z":1.0,"a":[1e-7,"é\\n"],"nested":{"b":null,"a":true}}'
    assert (row["z"], row["model"]) == ("1.0", "m")


async def test_nul_character_refused_before_anything_is_written(pg_url: str) -> None:
    async with agentstore.open(pg_url) as store:
        session = await store.create_session()
        with pytest.raises(InvalidEventError, match="cannot store"):
            await store.append(session.id, new_event("custom", {"text": "a\x00b"}))
        assert await store.get_events(session.id) == []
        stored = await store.append(session.id, new_event("custom", {"text": "ab"}))
        assert stored.sequence_number == 1


def test_url_options_are_parsed_and_checked() -> None:
    opts = parse_url(
        "postgresql://u:secret@db:6543/app?schema=agents&pool_max_size=20&pool_min_size=2"
        "&statement_timeout=1.5&pgbouncer=true&sslmode=disable"
    )
    assert (opts.schema, opts.pool_min_size, opts.pool_max_size) == ("agents", 2, 20)
    assert (opts.statement_timeout, opts.pgbouncer) == (1.5, True)
    assert opts.dsn == "postgresql://u:secret@db:6543/app?sslmode=disable"  # ours removed
    assert "secret" not in opts.display
    with pytest.raises(InvalidInputError, match="pool_max_size"):
        parse_url("postgresql://db/app?pool_max_size=lots")
    with pytest.raises(InvalidInputError, match="schema"):
        parse_url('postgresql://db/app?schema=x";drop')
    with pytest.raises(InvalidInputError, match="unknown PostgreSQL option"):
        parse_url("postgresql://db/app", pool_size=3)
    with pytest.raises(InvalidInputError, match="above"):
        parse_url("postgresql://db/app?pool_min_size=5&pool_max_size=2")


async def test_pool_size_and_pgbouncer_mode_take_effect(pg_url: str) -> None:
    backend = PostgresBackend(f"{pg_url}&pool_max_size=3&pgbouncer=true")
    async with agentstore.open(backend) as store:
        assert backend.db.max_size == 3
        session = await store.create_session()
        for _ in range(3):  # the same statements again: no prepared-statement cache needed
            await store.append(session.id, new_event("custom", {}))
        assert len(await store.get_events(session.id)) == 3
        # pgbouncer's transaction mode moves clients between server connections: no
        # named prepared statement may outlive its statement.
        named = await backend.db.fetchval("SELECT count(*) FROM pg_prepared_statements")
        assert named == 0
    cached = PostgresBackend(pg_url, pool_max_size=1)
    async with agentstore.open(cached) as store:
        session = await store.create_session()
        await store.append(session.id, new_event("custom", {}))
        await store.append(session.id, new_event("custom", {}))
        async with cached.db.acquire() as conn:  # the one connection: it kept them
            assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") > 0


async def test_statement_timeout_is_cancelled_on_the_server(
    pg_url: str, pg_database_url: str, pg_schema: str
) -> None:
    async with agentstore.open(f"{pg_url}&statement_timeout=0.3") as store:
        session = await store.create_session()
        blocker = await asyncpg.connect(pg_database_url)
        try:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(
                f'SELECT 1 FROM "{pg_schema}".sessions WHERE id = $1 FOR UPDATE', session.id
            )
            with pytest.raises(StorageUnavailableError, match="cancelled on the server"):
                await store.append(session.id, new_event("custom", {"n": 1}))
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'agentstore' "
                "AND state = 'active' AND wait_event_type = 'Lock'"
            )
            assert waiting == 0  # the server gave up the statement; nothing is left waiting
            await tx.rollback()
        finally:
            await blocker.close()
        retried = await store.append(session.id, new_event("custom", {"n": 1}))
        assert retried.sequence_number == 1


async def test_newer_schema_is_refused(pg_url: str, pg_database_url: str, pg_schema: str) -> None:
    async with agentstore.open(pg_url):
        pass
    conn = await asyncpg.connect(pg_database_url)
    try:
        await conn.execute(
            f'INSERT INTO "{pg_schema}".schema_migrations (version, name) VALUES ($1, $2)',
            current_version() + 1,
            "from the future",
        )
    finally:
        await conn.close()
    with pytest.raises(StorageError, match="newer than this agentstore"):
        async with agentstore.open(pg_url):
            pass


async def test_migrate_false_refuses_an_unmigrated_schema(pg_url: str) -> None:
    with pytest.raises(StorageError, match="agentstore migrate"):
        async with agentstore.open(f"{pg_url}&migrate=false"):
            pass


async def test_concurrent_migrators_make_one_schema(pg_url: str, pg_database_url: str) -> None:
    backends = [PostgresBackend(pg_url, pool_max_size=1) for _ in range(6)]
    await asyncio.gather(*(b.open() for b in backends))  # six connections migrate at once
    try:
        schema = backends[0].options.schema
        rows = await backends[0].db.fetch(
            f'SELECT version, name FROM "{schema}".schema_migrations ORDER BY version'
        )
        assert [r["version"] for r in rows] == list(range(1, current_version() + 1))
    finally:
        await asyncio.gather(*(b.close() for b in backends))


def test_missing_driver_names_the_extra(pg_url: str) -> None:
    code = (
        "import sys; sys.modules['asyncpg'] = None\n"
        "import agentstore\n"
        "assert 'asyncpg' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n"
        "try:\n"
        f"    agentstore.open({pg_url!r})\n"
        "except agentstore.errors.BackendUnavailableError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'agentstore[postgres]'" in out.stdout
    assert issubclass(BackendUnavailableError, ImportError)


def test_import_agentstore_does_not_import_the_driver() -> None:
    code = "import sys, agentstore; print('asyncpg' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("ci", "outcome"), [("1", "1 error"), ("", "1 skipped")])
def test_no_server_fails_in_ci_and_skips_elsewhere(ci: str, outcome: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["AGENTSTORE_TEST_POSTGRES_URL"] = "postgresql://postgres@127.0.0.1:9/postgres"
    if ci:
        env["CI"] = ci
    test = f"{__file__}::test_open_by_url_appends_and_replays"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider", "-rs"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert outcome in out.stdout, out.stdout
    assert "no PostgreSQL server reachable at postgresql://postgres@127.0.0.1:9" in out.stdout
    assert (out.returncode != 0) == bool(ci)


async def test_backend_options_reach_the_backend(pg_database_url: str, pg_schema: str) -> None:
    options = {"schema": pg_schema, "pool_max_size": 2}
    async with agentstore.open(pg_database_url, backend_options=options) as store:
        backend = store.backend
        assert isinstance(backend, PostgresBackend)
        assert (backend.options.schema, backend.db.max_size) == (pg_schema, 2)
        await store.create_session()
    with pytest.raises(InvalidInputError, match="unknown PostgreSQL option"):
        agentstore.open(pg_database_url, backend_options={"pool": 2})

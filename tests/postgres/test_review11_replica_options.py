"""Review 11: a read replica's options. A smaller pool for the replica than the primary's
minimum was refused with the primary's message ("pool_min_size (5) is above pool_max_size
(2)") though the user set neither on the replica; `read_url` in a URL's query went to the
server as a setting and failed on connecting ("unrecognized configuration parameter"),
though the backend's docstring listed it as a query option (both failed before the fix)."""

from __future__ import annotations

import pytest

import agentstore
from agentstore import InvalidInputError, new_event
from agentstore.backends.postgres.options import parse_url
from tests.cli_process import agentstore_cli


async def test_a_replica_pool_smaller_than_the_primarys_minimum(
    pg_url: str, pg_database_url: str
) -> None:
    primary = f"{pg_url}&pool_min_size=5&pool_max_size=10"
    replica = f"{pg_database_url}?pool_max_size=2"
    async with agentstore.open(primary, read_url=replica) as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("custom", {}))
        assert len(await store.replay(sid)) == 1
        read = store.backend.options.read_options  # type: ignore[attr-defined]
        assert (read.pool_min_size, read.pool_max_size) == (2, 2)
        assert store.backend.options.pool_min_size == 5  # type: ignore[attr-defined]
    listed = agentstore_cli("--store", primary, "--read-store", replica, "sessions")
    assert listed.returncode == 0, listed.stderr


def test_a_replica_minimum_above_its_maximum_is_named_as_the_replicas() -> None:
    url = "postgresql://u@primary/db?pool_max_size=4"
    with pytest.raises(InvalidInputError, match=r"read replica's pool_min_size \(8\)"):
        parse_url(url, read_url="postgresql://u@replica/db?pool_min_size=8")


@pytest.mark.parametrize("where", ["primary", "replica"])
def test_read_url_in_a_query_is_refused_before_connecting(pg_url: str, where: str) -> None:
    inner = "postgresql://postgres@127.0.0.1:5432/postgres"
    if where == "primary":
        args = ["--store", f"{pg_url}&read_url={inner}"]
    else:
        args = ["--store", pg_url, "--read-store", f"{inner}?read_url={inner}"]
    out = agentstore_cli(*args, "sessions")
    assert out.returncode == 2, out.stderr
    assert "read_url is not an option of the URL's query" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1

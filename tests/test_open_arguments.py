"""`agentstore.open` and the reads refuse bad arguments with agentstore's own error.

`True` passed for a count (it is an `int` to Python) made a snapshot after every event or
a cache of one session; a reducer that is not a function was taken and failed at the
first `get_state`; a path holding a NUL raised `ValueError`, `types=5` a `TypeError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import agentstore
from agentstore import InvalidInputError, new_event


@pytest.mark.parametrize(
    "arguments",
    [
        {"snapshot_interval": True},
        {"snapshot_interval": -1},
        {"snapshot_interval": "100"},
        {"cache_size": True},
        {"cache_size": -1},
        {"reducer": 5},
        {"reducer": "default"},
    ],
    ids=str,
)
async def test_open_refuses_a_bad_setting(arguments: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        async with agentstore.open("memory://", **arguments):
            pass


def test_a_data_directory_path_with_a_nul_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="NUL"):
        agentstore.open(f"{tmp_path}/data\x00dir")


@pytest.mark.parametrize("types", [5, 1.5, object()], ids=["int", "float", "object"])
async def test_a_read_refuses_types_that_are_no_event_types(types: Any) -> None:
    async with agentstore.open("memory://") as store:
        sid = (await store.create_session()).id
        await store.append(sid, new_event("custom", {}))
        with pytest.raises(InvalidInputError, match="types must be"):
            await store.replay(sid, types=types)
        assert len(await store.replay(sid, types="custom")) == 1


def test_the_sync_store_refuses_types_that_are_no_event_types() -> None:
    with agentstore.open_sync("memory://") as store:
        sid = store.create_session().id
        with pytest.raises(InvalidInputError, match="types must be"):
            store.replay(sid, types=5)  # type: ignore[arg-type]
        assert store.replay(sid, types=(t for t in ["custom"])) == []

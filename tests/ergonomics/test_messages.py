"""Library messages say what is wrong in library words, and what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentstore
from agentstore import InvalidInputError, InvalidSessionIdError


async def test_opening_a_file_says_it_is_not_a_data_directory(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("notes")
    with pytest.raises(InvalidInputError, match=r"a-file is a file, not a data directory$"):
        agentstore.open(a_file)
    assert a_file.read_text() == "notes"


async def test_a_session_where_an_id_is_expected() -> None:
    async with agentstore.open(in_memory=True) as store:
        session = await store.create_session(name="x" * 500)
        with pytest.raises(InvalidSessionIdError) as caught:
            await store.get_state(session)  # type: ignore[arg-type]
        assert str(caught.value) == "expected a session id (str), got a Session: pass session.id"
        with pytest.raises(
            InvalidSessionIdError, match=r"^expected a session id \(str\), got int$"
        ):
            await store.append(42, agentstore.user_message("hi"))  # type: ignore[arg-type]

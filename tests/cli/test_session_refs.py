"""SESSION may be `latest`, an id, a unique id prefix or a unique name, in every command."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import Result

from tests.cli.conftest import BASE_TIME, seed_session

Cli = Callable[..., Result]

EVENTS = [("user_message", {"content": "hi"}, {}, 0)]


@pytest.fixture
def three(data_dir: Path) -> dict[str, str]:
    """Three sessions created a minute apart; two share the name `nightly`."""
    ids = {
        "old": seed_session(data_dir, EVENTS, session_id="aaa-old", name="nightly"),
        "mid": seed_session(
            data_dir,
            EVENTS,
            session_id="bbb-mid",
            name="nightly",
            created=BASE_TIME + timedelta(minutes=1),
        ),
        "new": seed_session(
            data_dir,
            EVENTS,
            session_id="ccc-new",
            name="checkout",
            created=BASE_TIME + timedelta(minutes=2),
        ),
    }
    return ids


def _session_of(cli: Cli, *args: str) -> str:
    result = cli("stats", *args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return str(orjson.loads(result.stdout)["session"]["id"])


@pytest.mark.usefixtures("three")
def test_latest_is_the_newest_session(cli: Cli) -> None:
    assert _session_of(cli, "latest") == "ccc-new"
    assert "ccc-new" in cli("replay", "latest").stdout
    assert orjson.loads(cli("export", "latest").stdout)["session"]["id"] == "ccc-new"


def test_latest_without_sessions(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    result = cli("replay", "latest")
    assert result.exit_code == 1
    assert result.stderr == "error: there are no sessions yet, so no latest one\n"


@pytest.mark.usefixtures("three")
def test_a_unique_name_works_like_an_id(cli: Cli) -> None:
    assert _session_of(cli, "checkout") == "ccc-new"
    forked = cli("fork", "checkout", "--at", "1")
    assert forked.exit_code == 0, forked.stderr


@pytest.mark.usefixtures("three")
def test_an_ambiguous_name_lists_the_matches(cli: Cli) -> None:
    result = cli("replay", "nightly")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: 2 sessions are named 'nightly' (bbb-mid, aaa-old): pass an id or id prefix "
        "instead\n"
    )


def test_an_id_wins_over_a_name(cli: Cli, data_dir: Path) -> None:
    seed_session(data_dir, EVENTS, session_id="deadbeef", name="x")
    seed_session(data_dir, EVENTS, session_id="other", name="deadbeef")
    assert _session_of(cli, "deadbeef") == "deadbeef"


@pytest.mark.usefixtures("three")
def test_a_name_with_spaces_and_an_unknown_one(cli: Cli, data_dir: Path) -> None:
    seed_session(data_dir, EVENTS, session_id="ddd", name="my agent run")
    assert _session_of(cli, "my agent run") == "ddd"
    missing = cli("replay", "nobody")
    assert missing.exit_code == 1
    assert missing.stderr == "error: session 'nobody' not found\n"

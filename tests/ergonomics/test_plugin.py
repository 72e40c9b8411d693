"""The `agentstore.testing` pytest plugin, run in a fresh pytest session with pytester."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.metadata import entry_points

import pytest

import agentstore
from agentstore import EventType
from agentstore.testing import check_events

pytestmark = pytest.mark.filterwarnings("error")


def _plugin_args() -> list[str]:
    """Load the plugin explicitly unless its entry point is installed (then it loads itself)."""
    installed = any(ep.value == "agentstore.testing" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "agentstore.testing"]


def test_entry_point_is_declared() -> None:
    from pathlib import Path

    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nagentstore = "agentstore.testing"' in pyproject


USER_TESTS = """
import pytest
import agentstore
from agentstore import EventType
from agentstore.testing import assert_events


async def run_agent(store, sid):
    await store.append(sid, agentstore.user_message("Find flights BER -> MUC"))
    async with store.track_tool(sid, "search_flights", {"to": "MUC"}) as call:
        call.result = ["EW456"]
    async with store.track_llm(sid, "gpt-4o") as llm:
        llm.respond("EW456 it is", tokens_in=100, tokens_out=10)


async def test_in_memory(agent_store):
    session = await agent_store.create_session()
    await run_agent(agent_store, session.id)
    events = await assert_events(agent_store, session.id, [
        EventType.USER_MESSAGE, EventType.TOOL_CALLED, EventType.TOOL_RESULT,
        EventType.LLM_REQUEST, EventType.LLM_RESPONSE,
    ])
    assert events[-1].metadata.cost_usd > 0


async def test_on_files(file_agent_store, tmp_path):
    session = await file_agent_store.create_session()
    await run_agent(file_agent_store, session.id)
    await assert_events(file_agent_store, session.id,
                        ["tool_called", "llm_response"], exact=False)
    assert (tmp_path / "agent-data" / "events" / f"{session.id}.jsonl").exists()


def test_sync(sync_agent_store):
    session = sync_agent_store.create_session()
    with sync_agent_store.track_tool(session.id, "lookup"):
        pass
    assert_events(sync_agent_store, session.id, [EventType.TOOL_CALLED, EventType.TOOL_RESULT])


async def test_wrong_order_fails(agent_store):
    session = await agent_store.create_session()
    await run_agent(agent_store, session.id)
    await assert_events(agent_store, session.id, [
        EventType.USER_MESSAGE, EventType.LLM_REQUEST,
    ])
"""


def _outcomes(result: pytest.RunResult, module: str) -> dict[str, str]:
    """The outcome of each test of `module` in a `-rA` run: {test name: PASSED|FAILED|...}."""
    found = {}
    for line in result.outlines:
        outcome, _, rest = line.partition(" ")
        if rest.startswith(f"{module}.py::"):
            found[rest.split("::")[1].split()[0]] = outcome
    return found


@pytest.fixture(scope="module")
def users_run(tmp_path_factory: pytest.TempPathFactory) -> pytest.RunResult:
    """USER_TESTS and FORGETFUL_TESTS run by one fresh pytest process with the plugin, as
    pytester's runpytest_subprocess does (its own directory, ini, HOME and basetemp; no
    PYTEST_ADDOPTS). One start-up (several seconds: every installed plugin loads) instead
    of one per test; each test reads the outcomes of its own module's tests."""
    where = tmp_path_factory.mktemp("users")
    # As pytester's makepyfile, without the blank first line (the line numbers checked).
    (where / "test_user_agent.py").write_text(USER_TESTS.strip("\n") + "\n")
    (where / "test_forgetful.py").write_text(FORGETFUL_TESTS.strip("\n") + "\n")
    (where / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["HOME"] = str(where)
    command = [sys.executable, "-m", "pytest", f"--basetemp={where / 'basetemp'}", "-rA"]
    began = time.monotonic()
    done = subprocess.run(
        [*command, *_plugin_args(), "-p", "no:cacheprovider"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = time.monotonic() - began
    return pytest.RunResult(done.returncode, done.stdout.splitlines(), [], took)


def test_plugin_fixtures_and_assert_events(users_run: pytest.RunResult) -> None:
    users_run.assert_outcomes(passed=4, failed=3)  # both modules: no error, none left out
    assert _outcomes(users_run, "test_user_agent") == {
        "test_in_memory": "PASSED",
        "test_on_files": "PASSED",
        "test_sync": "PASSED",
        "test_wrong_order_fails": "FAILED",
    }
    users_run.stdout.fnmatch_lines(
        [
            "*test_wrong_order_fails*",
            "*recorded events differ: event 2 is tool_called, expected llm_request*",
            "*expected: ?'user_message', 'llm_request'?",
        ]
    )


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="def test_no_fixture(request):\n"
        "    assert 'agent_store' not in request.fixturenames\n"
        "    request.getfixturevalue('agent_store')\n"
    )
    installed = not _plugin_args()
    args = ["-p", "no:agentstore"] if installed else []
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    result.assert_outcomes(errors=0, failed=1)
    result.stdout.fnmatch_lines(["*fixture 'agent_store' not found*"])


def test_check_events_messages() -> None:
    events = [agentstore.user_message("x"), agentstore.tool_called("t")]
    assert check_events(events, [EventType.USER_MESSAGE, "tool_called"]) == events
    with pytest.raises(AssertionError, match="missing after event 2: tool_result"):
        check_events(events, ["user_message", "tool_called", "tool_result"])
    with pytest.raises(AssertionError, match="unexpected after event 1: tool_called"):
        check_events(events, ["user_message"])
    assert check_events(events, ["tool_called"], exact=False) == events
    with pytest.raises(AssertionError, match="lack user_message"):
        check_events(events, ["tool_called", "user_message"], exact=False)


def test_assert_events_needs_a_store() -> None:
    from agentstore.testing import assert_events

    with pytest.raises(TypeError, match="Store or SyncStore"):
        assert_events([], "sid", [])  # type: ignore[call-overload]


FORGETFUL_TESTS = """
import agentstore
from agentstore import EventType
from agentstore.testing import assert_events


async def test_forgot_await(agent_store):
    session = await agent_store.create_session()
    await agent_store.append(session.id, agentstore.user_message("hi"))
    assert_events(agent_store, session.id, [EventType.TOOL_CALLED])  # wrong AND not awaited


async def test_kept_but_never_awaited(agent_store):
    session = await agent_store.create_session()
    check = assert_events(agent_store, session.id, [])
    assert check is not None


async def test_awaited_is_fine(agent_store):
    session = await agent_store.create_session()
    await agent_store.append(session.id, agentstore.user_message("hi"))
    await assert_events(agent_store, session.id, [EventType.USER_MESSAGE])
"""


def test_an_unawaited_assert_events_fails_the_test(users_run: pytest.RunResult) -> None:
    users_run.assert_outcomes(passed=4, failed=3)  # both modules: no error, none left out
    assert _outcomes(users_run, "test_forgetful") == {
        "test_forgot_await": "FAILED",
        "test_kept_but_never_awaited": "FAILED",
        "test_awaited_is_fine": "PASSED",
    }
    users_run.stdout.fnmatch_lines(
        [
            "*assert_events(...) was never awaited at *test_forgetful.py:9, so it checked "
            "nothing: write `await assert_events(store, session_id, ?...?)`*",
        ]
    )
    users_run.stdout.fnmatch_lines(["*never awaited at *test_forgetful.py:14*"])


def test_outside_pytest_an_unawaited_check_warns() -> None:
    code = (
        "import gc, warnings, agentstore\n"
        "from agentstore.testing import assert_events\n"
        "warnings.simplefilter('always')\n"
        "store = agentstore.open(in_memory=True)\n"
        "assert_events(store, 's', [])\n"
        "gc.collect()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning: assert_events(...) was never awaited" in done.stderr

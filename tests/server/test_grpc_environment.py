"""grpc's settings that agentstore brings (agentstore/server/__init__.py): set before grpc
loads in a process that starts from agentstore (`agentstore serve`, the remote backend),
and never over a value of the user's own."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

OFF = "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints"
PROBE = (
    "import os, sys; import {module}; "
    "assert 'grpc' in sys.modules; print(repr(os.environ.get('GRPC_EXPERIMENTS')))"
)


def _loaded_with(module: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return str(ast.literal_eval(done.stdout))  # the repr of a str or None


@pytest.mark.parametrize("module", ["agentstore.backends.remote", "agentstore.server.grpc_door"])
def test_grpc_loads_with_the_event_engine_experiments_off(module: str) -> None:
    assert _loaded_with(module) == OFF


@pytest.mark.parametrize("value", ["", "-bogus"])
def test_a_setting_of_the_users_own_is_kept(value: str) -> None:
    assert _loaded_with("agentstore.backends.remote", GRPC_EXPERIMENTS=value) == value

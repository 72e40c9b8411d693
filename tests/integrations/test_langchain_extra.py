"""The langchain extra stays optional: `import agentstore` never loads it, and a missing
extra is an ImportError that says what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_agentstore_does_not_import_langchain_or_langgraph() -> None:
    done = run(
        "import sys, agentstore, agentstore.integrations; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'langgraph', 'langsmith')))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["langchain", "langgraph"])
def test_a_missing_extra_names_the_pip_command(module: str) -> None:
    # sys.modules[name] = None makes `import name` fail as if it were not installed.
    done = run(
        "import sys; sys.modules['langchain_core'] = None; sys.modules['langgraph'] = None\n"
        f"import agentstore.integrations.{module}"
    )
    assert done.returncode != 0
    assert "pip install 'agentstore[langchain]'" in done.stderr

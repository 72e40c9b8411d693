"""The complete programs on the LangChain/LangGraph and ADK docs pages run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PAGES = ["langchain.md", "adk.md"]


def _programs() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for index, code in enumerate(BLOCK.findall((DOCS / page).read_text())):
            if "asyncio.run(" in code:
                found.append((f"{page}#{index}", code))
    return found


def test_each_page_has_a_complete_program() -> None:
    assert {where.split("#")[0] for where, _ in _programs()} == set(PAGES)


@pytest.mark.parametrize(("where", "code"), _programs(), ids=[w for w, _ in _programs()])
def test_program_runs(where: str, code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stderr}"

"""docs/cli.md is generated from --help, so it cannot drift from the CLI."""

from __future__ import annotations

from agentstore_cli import _docgen
from agentstore_cli.app import COMMANDS


def test_cli_page_is_up_to_date() -> None:
    page = _docgen.render_page()
    assert _docgen.PAGE.read_text() == page, (
        "docs/cli.md is out of date: run `.venv/bin/python -m agentstore_cli._docgen`"
    )


def test_cli_page_covers_every_command() -> None:
    page = _docgen.PAGE.read_text()
    for name, _target in COMMANDS:
        assert f"### agentstore {name}\n" in page
        assert f"Usage: agentstore {name} [OPTIONS]" in page
    assert "\x1b" not in page

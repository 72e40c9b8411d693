"""Payloads are printed as text: no Rich markup, no terminal control sequences.

An agent log holds whatever an LLM, a tool or a web page produced. If a viewer let it
through, a payload could clear the screen, retitle the window, forge earlier lines with a
carriage return, reorder text with bidi overrides, or plant a hyperlink.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import Result

from tests.cli.conftest import seed_session

Cli = Callable[..., Result]

EVIL = (
    "[red]RED[/red] [link=https://evil.example]click[/link] :smile: "
    "\x1b[2J\x1b[H\x1b]0;pwned\x07 ok\rFORGED \x9b31m \u202eevil\u202c \x00\x7f end"
    " zw\u200bsp \ufeffbom \u206adep \U000e0068\U000e0069tags"
)
RAW_CONTROLS = [
    *["\x1b[2J", "\x1b[H", "\x1b]", "\x07", "\r", "\x9b", "\u202e", "\x00", "\x7f"],
    # Invisible: zero-width space, byte-order mark, a deprecated format character, tags.
    *["\u200b", "\ufeff", "\u206a", "\U000e0068", "\U000e0069"],
]


@pytest.fixture
def evil(data_dir: Path) -> str:
    return seed_session(
        data_dir,
        [
            ("user_message", {"content": EVIL}, {}, 0),
            (
                "tool_called",
                {"tool": EVIL, "args": {"q": EVIL}},
                {"tool_name": EVIL, "call_id": "c"},
                1,
            ),
            ("tool_result", {"result": EVIL}, {"tool_name": EVIL, "call_id": "c"}, 2),
            ("llm_response", {"content": EVIL}, {"model": EVIL, "tokens_out": 1}, 3),
            ("error", {"error": EVIL, "kind": EVIL}, {}, 4),
            ("custom", EVIL, {}, 5),
        ],
        session_id="evil",
        name=EVIL,
        labels={"k": EVIL},
    )


def _assert_inert(out: str) -> None:
    for raw in RAW_CONTROLS:
        assert raw not in out, f"raw {raw!r} reached the terminal"
    assert "😄" not in out  # emoji codes are not expanded either


def _without_sgr(out: str) -> str:
    """Drop Rich's own colour codes (ESC [ ... m) to check nothing else is there."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", out)


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}])
@pytest.mark.parametrize(
    "args",
    [
        ["replay", "evil"],
        ["replay", "evil", "--type", "tool_called"],
        ["stats", "evil"],
        ["sessions"],
    ],
)
def test_control_sequences_are_escaped(
    cli: Cli, evil: str, args: list[str], env: dict[str, str]
) -> None:
    result = cli(*args, env={**env, "COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    _assert_inert(out)
    visible = _without_sgr(out)
    assert "\x1b" not in visible  # the only ESC bytes are Rich's own colour codes
    assert "\x1b]8;" not in out  # no hyperlink was planted
    # Shown as text (the sessions table cuts names at 40 characters).
    assert "[red]RED[/red]" in visible
    assert "\\x1b[2J" in visible or args == ["sessions"]


def test_markup_is_shown_as_text(cli: Cli, evil: str) -> None:
    out = cli("replay", "evil", env={"COLUMNS": "400"}).stdout
    assert "[red]RED[/red]" in out
    assert "[link=https://evil.example]click[/link]" in out
    assert ":smile:" in out
    assert "ok\\rFORGED" in out
    assert "\\u202eevil" in out
    assert "zw\\u200bsp \\ufeffbom \\u206adep \\U000e0068\\U000e0069tags" in out


def test_json_output_escapes_controls(cli: Cli, evil: str) -> None:
    out = cli("replay", "evil", "--format", "json").stdout
    _assert_inert(out)
    assert orjson.loads(out)[0]["payload"]["content"] == EVIL  # and loses nothing


def test_error_messages_are_escaped(cli: Cli, evil: str) -> None:
    result = cli("replay", "evil\x1b[2J")
    assert result.exit_code == 2
    _assert_inert(result.stderr)
    assert result.stderr.count("\n") == 1

"""At 80 columns nothing the CLI prints itself wraps or cuts a heading; help is tidy.

Payload summaries may be cut (with an ellipsis); headings, totals and help may not.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import Result

from agentstore_cli.app import COMMANDS, app
from tests.cli.conftest import FLIGHT_EVENTS, seed_session

Cli = Callable[..., Result]
NARROW = {"COLUMNS": "80"}

BIG = [
    (
        "llm_response",
        {"content": "done " * 40},
        {"model": "gpt-4o", "tokens_in": 1_234_567, "tokens_out": 7_654_321, "cost_usd": 12345.678},
        0,
    ),
    (
        "tool_called",
        {"tool": "search", "args": {"q": "x"}},
        {"call_id": "c9", "tool_name": "search"},
        5,
    ),
]


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def test_sessions_headings_fit_80_columns(cli: Cli, data_dir: Path) -> None:
    seed_session(data_dir, BIG, session_id="big-one", name="a session name that goes on " * 3)
    seed_session(data_dir, FLIGHT_EVENTS, session_id="flight", name="flight-search")
    out = cli("sessions", env=NARROW).stdout
    lines = _lines(out)
    assert all(len(line) <= 80 for line in lines), out
    assert lines[0].split() == [
        "ID",
        "NAME",
        "EVENTS",
        "TOKENS",
        "COST",
        "CREATED",
        "LAST",
        "EVENT",
    ]
    assert "8,888,888" in out and "$12,345.68" in out
    assert "a session" in out and "…" in out  # the name is what gets cut


def test_timeline_footer_fits_80_columns_and_marks_calls_without_result(
    cli: Cli, data_dir: Path
) -> None:
    seed_session(data_dir, BIG, session_id="big-one")
    out = cli("replay", "big-one", env=NARROW).stdout
    lines = _lines(out)
    assert all(len(line) <= 80 for line in lines), out
    footer = " ".join(lines[lines.index("─" * 80) + 1 :])
    for part in (
        "2 events",
        "8,888,888 tokens (1,234,567 in / 7,654,321 out)",
        "$12,345.68",
        "1 tool call",
        "0 errors",
        "1 without result",
        "wall time",
        "without result: #2 search",
    ):
        assert part in footer, (part, footer)


def test_no_calls_without_result_in_a_complete_session(cli: Cli, flight: str) -> None:
    out = cli("replay", flight).stdout
    assert "without result" not in out


def test_a_filtered_timeline_does_not_guess_calls_without_result(cli: Cli, flight: str) -> None:
    # The result of call 3 comes later than --to-seq 3: it is not known to be missing.
    out = cli("replay", flight, "--to-seq", "3").stdout
    assert "without result" not in out


HELP_PAGES = [
    ["--help"],
    *([name, "--help"] for name, _ in COMMANDS),
    ["otel", "--help"],  # a sub-app (typer.add_typer) gets the same style
    ["otel", "export", "--help"],
]


@pytest.mark.parametrize("args", HELP_PAGES, ids=" ".join)
def test_help_at_80_columns(cli: Cli, args: list[str]) -> None:
    out = cli(*args, env=NARROW).stdout
    lines = _lines(out)
    assert all(len(line) <= 80 for line in lines), out
    # One metavar style: SESSION / [SESSION] in usage, upper-case metavars, no type tags.
    usage = next(line for line in lines if "Usage:" in line)
    assert not re.search(r"[{}<>]|\[\[", usage), usage
    assert not re.search(r"<(bool|str|int|text|path)>|\{[a-z_]+\}", out), out
    # Paragraphs are wrapped by Rich at the terminal, not at the docstring's line breaks:
    # each line of a paragraph but its last is filled up to the width.
    command = typer.main.get_command(app)
    for name in args[:-1]:
        command = command.commands[name]  # type: ignore[attr-defined]
    text = [line.strip() for line in lines]
    for paragraph in (command.help or "").split("\n\n"):
        if paragraph.startswith("\b"):
            continue
        words = paragraph.split()
        start = next(i for i, line in enumerate(text) if line and line.split()[0] == words[0])
        shown: list[str] = []
        for line in text[start:]:
            shown.append(line)
            if len(" ".join(shown).split()) >= len(words):
                break
        assert " ".join(shown).split() == words
        for line, following in itertools.pairwise(shown):
            assert len(line) + 1 + len(following.split()[0]) > 78, (line, following)


def test_corrupt_log_spoils_only_its_own_row(cli: Cli, data_dir: Path) -> None:
    seed_session(data_dir, FLIGHT_EVENTS, session_id="good-one", name="good")
    seed_session(data_dir, FLIGHT_EVENTS, session_id="bad-one", name="bad")
    log = data_dir / "events" / "bad-one.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = b"{corrupt\n"
    log.write_bytes(b"".join(lines))
    result = cli("sessions")
    assert result.exit_code == 1
    rows = {line.split()[0]: line for line in _lines(result.stdout)[2:]}
    assert "unreadable" in rows["bad-one"]
    assert "unreadable" not in rows["good-one"] and "$" in rows["good-one"]
    assert result.stderr == (
        "error: 1 of these sessions could not be read (marked 'unreadable'): run "
        "'agentstore verify' to see where\n"
    )
    assert cli("sessions", "-o", "json").exit_code == 0


def test_stats_prune_and_reprice_fit_80_columns(cli: Cli, data_dir: Path) -> None:
    seed_session(data_dir, BIG, session_id="big-one", name="a session name that goes on " * 3)
    for args, intact in (
        (["stats", "big-one"], ["$12,345.68", "8,888,888 (1,234,567 in / 7,654,321 out)"]),
        (["prune", "--older-than", "1d", "--dry-run"], ["EVENTS", "LAST EVENT", "SIZE"]),
        (
            ["reprice", "big-one"],
            ["RECORDED", "REPRICED", "CHANGE", "$12,345.68", "1,234,567", "7,654,321"],
        ),
    ):
        result = cli(*args, env=NARROW)
        assert result.exit_code == 0, result.stderr
        lines = _lines(result.stdout)
        assert all(len(line) <= 80 for line in lines), result.stdout
        for text in intact:
            assert text in result.stdout, (args, text, result.stdout)
        if args[0] == "reprice":
            change = next(line for line in lines if line.startswith("total")).split()[-1]
            assert change.startswith("-$") and not change.endswith("…"), change

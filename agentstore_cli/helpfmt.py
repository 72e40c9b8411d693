"""How `--help` looks: one metavar style, and paragraphs that wrap at any width.

Typer prints a required argument as `{SESSION}`, an optional one as `[SESSION]`, and a
type column of `<str>`, `<bool>` or `<timeline|json|jsonl>`; and it keeps the line breaks
of a docstring, so at 80 columns a paragraph breaks mid-sentence. `AgentstoreCommand`
prints arguments as `SESSION` / `[SESSION]`, every option value as its upper-case
metavar (`N`, `DIR`, `FORMAT`) and nothing for a flag; `reflow` joins a paragraph's lines
so that Rich wraps it to the terminal.
"""

from __future__ import annotations

import inspect
from typing import Any

from typer.core import TyperArgument, TyperCommand

__all__ = ["AgentstoreCommand", "MetavarStyle", "reflow", "restyle"]


def reflow(doc: str | None) -> str | None:
    """Join the lines of each paragraph of a docstring; `\\b` paragraphs stay as written."""
    if not doc:
        return doc
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    out = [p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs]
    return "\n\n".join(out)


def _value_label(param: Any, ctx: Any) -> str | None:
    """The type column of the help: the option's metavar, nothing for flags and arguments."""
    if isinstance(param, TyperArgument) or getattr(param, "is_flag", False):
        return None
    metavar = getattr(param, "metavar", None)
    return str(metavar) if metavar else str(param.name).upper()


class MetavarStyle:
    """Mixin for a Click command or group: label each option in the one metavar style."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The parameters (with --help), each labelled in the one metavar style."""
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            # Per parameter: Typer builds its own parameter classes, with no hook for ours.
            param.display_type_rich = _bind(param)
        return params


class AgentstoreCommand(MetavarStyle, TyperCommand):
    """A Typer command whose help uses one metavar style (see the module docstring)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The usage line: `[OPTIONS] SESSION [FILE]`."""
        return _usage_pieces(self, ctx)


def restyle(command: Any) -> None:
    """Give a command made elsewhere (a Typer sub-app's) the same help style, in place.

    For groups, their commands too. Commands built as `AgentstoreCommand` are left as
    they are.
    """
    if isinstance(command, MetavarStyle) or getattr(command, "_agentstore_styled", False):
        return
    command._agentstore_styled = True
    command.help = reflow(command.help)
    original = command.get_params

    def get_params(ctx: Any) -> list[Any]:
        params: list[Any] = original(ctx)
        for param in params:
            param.display_type_rich = _bind(param)
        return params

    def collect_usage_pieces(ctx: Any) -> list[str]:
        return _usage_pieces(command, ctx)

    command.get_params = get_params
    if not hasattr(command, "commands"):  # a group keeps its `COMMAND [ARGS]...`
        command.collect_usage_pieces = collect_usage_pieces
    for sub in getattr(command, "commands", {}).values():
        restyle(sub)


def _usage_pieces(command: Any, ctx: Any) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if not isinstance(param, TyperArgument):
            continue
        name = param.metavar or (param.name or "").upper()
        name = name if param.required else f"[{name}]"
        pieces.append(name + ("..." if param.nargs != 1 else ""))
    return pieces


def _bind(param: Any) -> Any:
    def display_type_rich(ctx: Any) -> str | None:
        return _value_label(param, ctx)

    return display_type_rich

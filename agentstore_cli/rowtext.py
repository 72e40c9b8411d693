"""Timeline rows as plain text, for output that is not a terminal.

Building a Rich `Text` (and its spans) for every row of a 100,000-event timeline was most
of its cost in a pipe, where no style is shown anyway: the timeline writes its summaries
into an `Out`, either a `Text` (styled, for a terminal) or a `Plain` (text only), and
`fit` cuts a plain row to the width exactly as Rich would.
"""

from __future__ import annotations

import functools
import re
from typing import Protocol

from rich.cells import cell_len
from rich.text import Text

__all__ = ["Out", "Plain", "fit", "narrow_only"]


class Out(Protocol):
    """Where a summary is written: a Rich `Text` (styled) or a `Plain` (text only)."""

    def append(self, text: str, style: str = ...) -> object:
        """Add `text` (in `style`, where styles are shown)."""


class Plain:
    """A summary's text without styles: for output that is not a terminal.

    Building a Rich `Text` (and its spans) for every row of a 100,000-event timeline is
    most of its cost in a pipe, where no style is shown anyway.
    """

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def append(self, text: str, style: str = "") -> Plain:
        """Add `text`; the style is dropped."""
        self.parts.append(text)
        return self


def fit(line: str, width: int) -> str:
    """Cut `line` to `width` terminal cells with an ellipsis, as Rich's `truncate` does."""
    if line.isascii() or narrow_only(line):
        return line if len(line) <= width else line[: width - 1] + "…"
    text = Text(line)  # wide characters take two cells: Rich knows each one's width
    text.truncate(width, overflow="ellipsis")
    return text.plain


def narrow_only(line: str) -> bool:
    """Tell whether every character of `line` is one Rich counts as one cell (of those
    in `_narrow_characters`): such a line is cut by counting characters."""
    return _wider_character().search(line) is None


@functools.cache
def _wider_character() -> re.Pattern[str]:
    """A pattern that finds a character outside `_narrow_characters()`: a third faster
    than testing the set, and rows with `→` or `·` are half the timeline."""
    ranges: list[list[int]] = []
    for code in sorted(map(ord, _narrow_characters())):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    spans = "".join(f"\\U{start:08x}-\\U{stop:08x}" for start, stop in ranges)
    return re.compile(f"[^{spans}]")


@functools.cache
def _narrow_characters() -> frozenset[str]:
    """Characters Rich counts as one cell, among those rows are made of (Latin, Greek,
    Cyrillic, punctuation such as `…` and `·`, arrows such as `→`, box drawing): a row of
    only these is cut by counting characters, without Rich's per-character measure."""
    ranges = [(0x20, 0x7E), (0xA0, 0x2FF), (0x370, 0x482), (0x2010, 0x2027), (0x2190, 0x21FF)]
    ranges.append((0x2500, 0x25FF))
    chars = (chr(code) for start, stop in ranges for code in range(start, stop + 1))
    return frozenset(c for c in chars if cell_len(c) == 1)
